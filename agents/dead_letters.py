"""dead_letters: record every dead letter in MySQL so operators can query and act on it.

The dead-letter topic itself is the durable record; this table is the searchable copy.
A photo whose event was dead-lettered is marked ``failed`` with the reason, but only from
a state before a result: a letter never overwrites a completed or skipped photo (e.g. a
replay under a profile this worker lacks). The sink waits out database outages (retries
forever): a dead letter is never lost.
"""

from __future__ import annotations

import logging
from functools import partial

from streams.app import Worker
from streams.metrics import DEAD_LETTERS
from streams.processing import SINK_RETRY, Message, Stage
from streams.records import DeadLetter

log = logging.getLogger(__name__)

STAGE = "dead_letters"
#: The states a photo may fail from (completed, skipped and failed are final).
BEFORE_RESULT = ("uploaded", "analyzing", "analyzed", "queued", "processing", "enhancing",
                 "optimizing")


async def record_dead_letter(letter: DeadLetter, worker: Worker) -> None:
    db = worker.resources.db
    await db.execute(
        "INSERT IGNORE INTO dead_letters (event_id, stage, error_class, error_message,"
        " source_topic, source_partition, source_offset, image_id, original_event, failed_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " STR_TO_DATE(%s, '%%Y-%%m-%%dT%%H:%%i:%%s.%%fZ'))",
        (
            letter.event_id,
            letter.stage,
            letter.error_class,
            letter.error_message,
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
            letter.image_id,
            letter.original_event,
            letter.occurred_at,
        ),
    )
    if letter.image_id:
        await db.execute(
            "UPDATE product_images SET status = 'failed', last_error = %s"
            f" WHERE image_id = %s AND status IN ({', '.join(['%s'] * len(BEFORE_RESULT))})",
            (f"{letter.stage}: {letter.error_class}: {letter.error_message}"[:2000],
             letter.image_id, *BEFORE_RESULT),
        )


class DeadLetterStage(Stage[DeadLetter]):
    """The end of the line: a dead letter this stage cannot record is logged and counted,
    never sent back to the topic it came from (it stays there, so nothing is lost)."""

    async def _dead_letter(self, message: Message, exc: Exception, attempts: int) -> None:
        log.error("%s: cannot record %s[%s]@%s: %s: %s", self.name, message.topic,
                  message.partition, message.offset, type(exc).__name__, exc)
        DEAD_LETTERS.labels(self.name, type(exc).__name__).inc()


def register(worker: Worker) -> None:
    stage = DeadLetterStage(STAGE, DeadLetter, partial(record_dead_letter, worker=worker),
                            worker.topics.dead_letter, SINK_RETRY)

    worker.run_stage(worker.topics.dead_letter, stage)
