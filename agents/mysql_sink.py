"""mysql_sink: record every completed image and every AI spend in MySQL.

images.completed -> product_images (status, enhanced_url, cloudfront_url),
enhancement_jobs, processing_steps and the `after` quality_metrics row, in one
idempotent transaction (``services.completion_records``).
images.ai.budget -> ai_usage_logs, one row per AI step (``services.usage_records``).
Offsets advance only after the commit; while MySQL is down the sinks wait and retry with
backoff (never dead-letter for that).
"""

from __future__ import annotations

from functools import partial

from services.completion_records import save_completion
from services.object_store import ObjectUri
from services.usage_records import save_ai_usage
from streams.app import Worker
from streams.deletion import is_deleted
from streams.processing import SINK_RETRY, Stage
from streams.records import AISpendSettled, ImageCompleted

STAGE = "mysql_sink"


async def record_completion(event: ImageCompleted, worker: Worker) -> None:
    if await is_deleted(worker, event.image_id):
        # Published by a finalize that ran while the photo was being deleted: remove
        # what it wrote instead of recording it.
        store = worker.resources.store
        own = f"enhanced/{event.image_id}/"
        for output in event.outputs:
            uri = ObjectUri.parse(str(output.get("uri")))
            if uri.bucket == worker.settings.enhanced_bucket and uri.key.startswith(own):
                await store.delete(uri)
        return
    await save_completion(worker.resources.db, event)


async def record_ai_usage(settlement: AISpendSettled, worker: Worker) -> None:
    await save_ai_usage(worker.resources.db, settlement)


def register(worker: Worker) -> None:
    topics = worker.topics
    stage = Stage(STAGE, ImageCompleted, partial(record_completion, worker=worker),
                  topics.dead_letter, SINK_RETRY)
    usage_stage = Stage("ai_usage_sink", AISpendSettled,
                        partial(record_ai_usage, worker=worker), topics.dead_letter,
                        SINK_RETRY)

    worker.run_stage(topics.completed, stage)
    worker.run_stage(topics.ai_budget, usage_stage)
