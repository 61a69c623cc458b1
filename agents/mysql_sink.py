"""mysql_sink: record every completed image in MySQL (images.completed -> tables).

Writes product_images (status, enhanced_url, cloudfront_url), enhancement_jobs,
processing_steps and the `after` quality_metrics row in one idempotent transaction
(``services.completion_records``). The offset advances only after the commit; while
MySQL is down the sink waits and retries with backoff (never dead-letters for that).
"""

from __future__ import annotations

from services.completion_records import save_completion
from streams.app import app, resources, topics
from streams.processing import SINK_RETRY, Stage
from streams.records import ImageCompleted

STAGE = "mysql_sink"


async def record_completion(event: ImageCompleted) -> None:
    await save_completion(resources.db, event)


stage = Stage(STAGE, ImageCompleted, record_completion, topics.dead_letter, SINK_RETRY)


@app.agent(topics.completed, name=STAGE)
async def mysql_sink(stream):
    await resources.ready_with_retry()
    await stage.run(stream)
