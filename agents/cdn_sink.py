"""cdn_sink: batched CloudFront invalidations for completed images (images.completed).

finalize stores every rendition twice: under a versioned key (never cached stale, never
invalidated) and under a stable alias that listing pages link to; the outputs of the
alias carry ``"alias": true``. Only those paths (``"/" + key``) are invalidated. Paths
are deduplicated and sent in batches of at most ``invalidation_max_paths`` paths, or
after ``invalidation_window_seconds`` since the first pending path
(``streams.invalidations``). CloudFront busy (TooManyInvalidationsInProgress) or down is
retried forever with backoff (``SINK_RETRY``): a path is never dropped. A malformed event
is dead-lettered by the shared ``Stage``; a batch CloudFront refuses for good (no such
distribution, access denied) dead-letters the events that asked for it.

**Delivery: offsets are committed only after the invalidation request succeeded.** How
faust-streaming 0.15.3 acks, read in ``faust/streams.py`` and ``transport/consumer.py``:

* ``async for`` over a stream acks each event in the iterator's ``finally``, i.e. when the
  body of that iteration ends - too early for a batch; ``stream.noack()`` clones the
  stream with ``enable_acks=False`` and the events stay unacked until ``stream.ack``.
* ``stream.take(max, within)`` disables acks itself and acks the buffered events in a
  ``finally`` after its ``yield``: on the happy path when the body asks for the next
  batch, so after the invalidation. But the same ``finally`` also runs when the generator
  is closed - ``Stream.on_stop`` calls ``aclose()`` on every buffering generator (stop,
  rebalance-stop), and an exception leaving the body finalizes it - so a batch whose
  invalidation was still being retried gets acked, then committed by the consumer's stop
  commit: paths lost. ``take`` also counts events, not paths (an event has several
  aliases) and cannot deduplicate across windows.
* The consumer commits, per partition, the first run of consecutive acked offsets; its gap
  check is off by one and skipped before the first commit, so acks must be in offset order
  per partition or an unacked event can be committed over.
* On rebalance faust waits (``stream_wait_empty``) until every started event is acked:
  pending paths must be flushed by time, not by the next event, or the rebalance stalls.

Hence the approach: iterate ``stream.noack().events()``; decode/validate each event with
the shared ``Stage`` (dead letters as everywhere); put its alias paths in the batcher; a
flusher task sends batches whose window elapsed; after a batch succeeded (or its events
were dead-lettered) the events whose paths are all settled are marked done, and
``InOrderAcks`` acks them per partition in arrival order. A lock serialises the consumer
and the flusher, so while CloudFront is retried nothing else is consumed (back-pressure,
bounded memory). A crash or stop before the request succeeded leaves the events unacked:
they are delivered again, and the deterministic caller reference makes the repeat
harmless (CloudFront returns the existing invalidation; this worker also remembers the
references it confirmed and skips them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import faust

from imaging.errors import RetryableError
from services.cdn_records import InvalidationRecords
from services.cloudfront import CloudFront, InvalidationsBusy
from services.object_store import ObjectUri
from streams.app import Worker
from streams.invalidations import (
    InOrderAcks,
    InvalidationBatch,
    InvalidationBatcher,
    event_token,
    path_for_key,
)
from streams.metrics import INVALIDATIONS, PATHS_INVALIDATED, PENDING_PATHS, RETRIES
from streams.processing import SINK_RETRY, Message, RetryPolicy, Stage
from streams.records import ImageCompleted

log = logging.getLogger(__name__)

STAGE = "cdn_sink"

def alias_paths(completed: ImageCompleted) -> list[str]:
    """CDN paths of the outputs marked as stable aliases; versioned keys never go stale."""
    return [path_for_key(ObjectUri.parse(str(output.get("uri"))).key)
            for output in completed.outputs if output.get("alias") is True]


def source_token(completed: ImageCompleted) -> str:
    """Identity of one result, from its content (not from when it was emitted)."""
    content = json.dumps(sorted((str(o.get("uri")), o.get("size_bytes"))
                                for o in completed.outputs))
    return event_token(completed.event_id, content)


class CdnSink:
    """Batches alias paths of completed images into CloudFront invalidations."""

    def __init__(
        self,
        cloudfront: CloudFront,
        dead_letters: faust.TopicT,
        max_paths: int,
        window_seconds: float,
        retry: RetryPolicy = SINK_RETRY,
        clock: Callable[[], float] = time.monotonic,
        records: InvalidationRecords | None = None,
    ) -> None:
        self.cloudfront = cloudfront
        # The durable record of invalidated results (None: this process's memory only).
        self.records = records
        self.batcher = InvalidationBatcher(max_paths, window_seconds)
        self.retry = retry
        self.clock = clock
        self.stage = Stage(STAGE, ImageCompleted, self._collect, dead_letters, retry)
        self._acks: InOrderAcks[faust.EventT] = InOrderAcks()
        self._waiting: dict[str, list[tuple[faust.EventT, Message]]] = {}
        self._failed: dict[str, Exception] = {}
        self._collected: tuple[str, list[str]] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stream: faust.StreamT | None = None

    async def run(self, stream: faust.StreamT) -> None:
        """Consume forever with manual acks; a flusher task sends batches that are due."""
        self._stream = stream.noack()
        flusher = asyncio.ensure_future(self._flush_when_due())
        try:
            async for event in self._stream.events():
                await self.on_event(event)
        finally:
            flusher.cancel()

    async def on_event(self, event: faust.EventT) -> None:
        message = Message(
            topic=event.message.topic,
            partition=event.message.partition,
            offset=event.message.offset,
            key=event.key,
            value=event.value,
        )
        async with self._lock:
            self._acks.track(event.message.tp, event)
            self._collected = None
            outcome = await self.stage.process(message)  # dead-letters what is malformed
            collected, self._collected = self._collected, None
            if outcome != "ok" or collected is None or not collected[1]:
                self._acks.done(event)  # nothing to invalidate (or dead-lettered)
            else:
                token, paths = collected
                self._waiting.setdefault(token, []).append((event, message))
                for batch in self.batcher.add(paths, self.clock(), token):
                    await self._send(batch)
                self._wake.set()
            await self._release()

    async def _collect(self, completed: ImageCompleted) -> None:
        """Stage handler: paths are validated here, so a bad one dead-letters its event.
        A result invalidated before (an earlier life of this worker) needs nothing."""
        token, paths = source_token(completed), alias_paths(completed)
        if paths and self.records is not None and token in await self.records.done([token]):
            INVALIDATIONS.labels("already_done").inc()
            paths = []
        self._collected = (token, paths)

    async def _flush_when_due(self) -> None:
        while True:
            try:
                due_at = self.batcher.next_due()
                if due_at is None:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await asyncio.sleep(max(0.0, due_at - self.clock()))
                async with self._lock:
                    batch = self.batcher.due(self.clock())
                    if batch is not None:
                        await self._send(batch)
                        await self._release()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop invalidations for good
                log.exception("%s: flusher failed; going on", STAGE)
                await asyncio.sleep(1.0)

    async def _send(self, batch: InvalidationBatch) -> None:
        """Invalidate one batch, retrying transient faults forever; then settle it."""
        PENDING_PATHS.set(self.batcher.pending_paths)
        if self.batcher.already_confirmed(batch):
            INVALIDATIONS.labels("duplicate").inc()
            log.info("%s: batch %s already invalidated, not sent again", STAGE,
                     batch.caller_reference)
            await self._settle(batch, None)
            return
        attempts = 0
        while True:
            attempts += 1
            try:
                invalidation_id = await self.cloudfront.invalidate(
                    list(batch.paths), batch.caller_reference)
                break
            except RetryableError as exc:
                outcome = "busy" if isinstance(exc, InvalidationsBusy) else "retried"
                INVALIDATIONS.labels(outcome).inc()
                RETRIES.labels(STAGE, type(exc).__name__).inc()
                delay = self.retry.delay(attempts)
                log.warning("%s: %s (attempt %d, %d paths), retrying in %.2fs", STAGE, exc,
                            attempts, len(batch.paths), delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # refused for good: dead-letter who asked for it
                INVALIDATIONS.labels("failed").inc()
                log.error("%s: invalidation of %d paths refused: %s", STAGE,
                          len(batch.paths), exc)
                await self._settle(batch, exc)
                return
        INVALIDATIONS.labels("ok").inc()
        PATHS_INVALIDATED.inc(len(batch.paths))
        log.info("%s: invalidation %s for %d paths (%s)", STAGE, invalidation_id,
                 len(batch.paths), batch.caller_reference)
        await self._settle(batch, None)

    async def _settle(self, batch: InvalidationBatch, error: Exception | None) -> None:
        if error is None and self.records is not None:
            await self._remember(batch)
        if error is not None:
            for source in batch.sources:
                self._failed.setdefault(source, error)
        for source in self.batcher.settle(batch, succeeded=error is None):
            failure = self._failed.pop(source, None)
            for event, message in self._waiting.pop(source, []):
                if failure is not None:
                    await self.stage._dead_letter(message, failure, 1)
                self._acks.done(event)

    async def _remember(self, batch: InvalidationBatch) -> None:
        """Record the batch's results as invalidated before their events are acked; a
        database outage is waited out (the events stay unacked meanwhile)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                await self.records.remember(batch.sources, batch.caller_reference)
                return
            except RetryableError as exc:
                RETRIES.labels(STAGE, type(exc).__name__).inc()
                await asyncio.sleep(self.retry.delay(attempts))

    async def _release(self) -> None:
        PENDING_PATHS.set(self.batcher.pending_paths)
        stream = self._stream
        for event in self._acks.release():
            if stream is not None:
                await stream.ack(event)
            else:
                event.ack()


def register(worker: Worker) -> None:
    settings = worker.settings
    sink = CdnSink(CloudFront(settings), worker.topics.dead_letter,
                   settings.invalidation_max_paths, settings.invalidation_window_seconds,
                   records=InvalidationRecords(lambda: worker.resources.db))

    @worker.app.agent(worker.topics.completed, name=STAGE)
    async def cdn_sink(stream):
        await worker.resources.ready_with_retry()
        await sink.run(stream)
