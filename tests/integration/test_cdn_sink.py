"""The cdn_sink agent on a real worker against the moto CloudFront of the embedded stack:
aliases only, deduplicated paths, one batch per window, idempotent redelivery, dead letters,
offsets committed once the invalidations succeeded."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

import schemas
from agents.cdn_sink import source_token
from services.cloudfront import CloudFront
from streams.invalidations import caller_reference
from streams.records import ImageCompleted, deterministic_id
from streams.topics import TOPIC_SPECS

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]


def _completed(settings, image_id: str, version: str, *, aliases: bool = True,
               key_override: str | None = None) -> ImageCompleted:
    bucket = settings.enhanced_bucket
    outputs = []
    for fmt, ext in (("jpeg", "jpg"), ("webp", "webp")):
        versioned = f"enhanced/{image_id}/large-{version}-p1.0.0.{ext}"
        alias = key_override or f"enhanced/{image_id}/current-large.{ext}"
        outputs.append({"name": "large", "format": fmt, "width": 1200, "height": 1600,
                        "uri": f"s3://{bucket}/{versioned}", "size_bytes": 1000,
                        "url": f"https://{settings.cdn_domain}/{versioned}", "alias": False})
        if aliases:
            outputs.append({"name": "large", "format": fmt, "width": 1200, "height": 1600,
                            "uri": f"s3://{bucket}/{alias}", "size_bytes": 1000,
                            "url": f"https://{settings.cdn_domain}/{alias}", "alias": True})
    # An output without the flag at all (older producers) is not an alias either.
    outputs.append({"format": "jpeg", "width": 300, "height": 400, "size_bytes": 10,
                    "uri": f"s3://{bucket}/enhanced/{image_id}/thumb-{version}.jpg"})
    job_id = deterministic_id("job", image_id, version)
    event = ImageCompleted.new(
        event_id=deterministic_id("ImageCompleted", job_id), image_id=image_id, job_id=job_id,
        seller_id="seller-cdn", sku_id=f"SKU-{image_id[:8]}", status="completed",
        profile={"name": "default", "version": "1.0.0"},
        before={"overall_score": 40.0, "tier": "poor"},
        after={"overall_score": 80.0, "tier": "good"},
        kept_original=False, kept_original_reason=None, steps=[], total_cost_usd=0.0,
        ai_used=False, outputs=outputs,
        cdn_url=f"https://{settings.cdn_domain}/enhanced/{image_id}/current-large.jpg",
        processing_ms=12.5,
    )
    schemas.validate_event("image_completed", event.to_document())
    return event


def _produce(settings, messages: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    topic = settings.topic_name(TOPIC_SPECS["completed"].name)
    for key, value in messages:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(10) == 0


def _ours(cloudfront: CloudFront, marker: str) -> list[dict]:
    """Full invalidations (paths, caller reference) whose paths mention ``marker``."""
    async def fetch() -> list[dict]:
        found = []
        for summary in await cloudfront.list_invalidations():
            full = await cloudfront.get_invalidation(summary["Id"])
            if any(marker in p for p in full["InvalidationBatch"]["Paths"].get("Items") or []):
                found.append(full)
        return found

    return asyncio.run(fetch())


def _wait_invalidations(cloudfront, marker: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = _ours(cloudfront, marker)
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{len(found)}/{count} invalidations for {marker} after {timeout}s")


def _metric(worker, name: str, labels: str = "") -> float:
    text = requests.get(worker.base_url + "/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name + labels)} ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_metric(worker, name: str, labels: str, above: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    value = _metric(worker, name, labels)
    while value <= above and time.monotonic() < deadline:
        time.sleep(0.5)
        value = _metric(worker, name, labels)
    assert value > above, f"{name}{labels} stayed at {value}"
    return value


def _paths(invalidation: dict) -> set[str]:
    return set(invalidation["InvalidationBatch"]["Paths"]["Items"])


def _wait_pipeline_idle(db_query, settings, timeout: float = 180) -> None:
    """Let photos uploaded by earlier tests finish, so no foreign path joins our batch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = db_query("SELECT COUNT(*) AS n FROM product_images "
                        "WHERE status IN ('uploaded', 'analyzed')")[0]["n"]
        if busy == 0:
            break
        time.sleep(0.5)
    time.sleep(settings.invalidation_window_seconds + 1.5)  # their batch has been sent


def test_completed_images_are_invalidated_in_deduplicated_idempotent_batches(
        worker, stack, topic_reader, db_query):
    _, settings = stack
    _wait_pipeline_idle(db_query, settings)
    cloudfront = CloudFront(settings)
    asyncio.run(cloudfront.ensure_distribution())  # the worker finds the same one
    marker = f"cdn{RUN}"
    image_a = deterministic_id(marker, "a")
    image_b = deterministic_id(marker, "b")
    # Every image id of this test is recognisable in the paths: "/enhanced/<id>/...".
    a1 = _completed(settings, image_a, "v1")
    b1 = _completed(settings, image_b, "v1")
    a1_again = _completed(settings, image_a, "v1b")  # another result, same alias paths
    unflagged = _completed(settings, deterministic_id(marker, "c"), "v1", aliases=False)
    first = [a1, b1, a1_again, unflagged]
    _produce(settings, [(e.image_id, e.to_json()) for e in first])

    expected = {f"/enhanced/{image_a}/current-large.jpg", f"/enhanced/{image_a}/current-large.webp",
                f"/enhanced/{image_b}/current-large.jpg", f"/enhanced/{image_b}/current-large.webp"}
    _wait_invalidations(cloudfront, image_a, 1)
    time.sleep(1.0)  # a second batch for the same events would show up by now
    by_id = {i["Id"]: i for i in _ours(cloudfront, image_a) + _ours(cloudfront, image_b)}
    assert len(by_id) == 1, f"expected one batch, got {len(by_id)}"
    batch = next(iter(by_id.values()))
    assert _paths(batch) == expected            # aliases only, deduplicated, exact
    assert batch["InvalidationBatch"]["Paths"]["Quantity"] == 4
    assert batch["Status"] == "COMPLETED"       # moto's spelling ("Completed" on AWS)
    tokens = [source_token(e) for e in (a1, b1, a1_again)]
    reference = caller_reference(expected, tokens)
    assert batch["InvalidationBatch"]["CallerReference"] == reference

    # Redelivery of the very same events: no second invalidation. MySQL's record of
    # invalidated results (cdn_invalidations) recognises them before any batch forms.
    done = _metric(worker, "imgstream_cdn_invalidations_total", '{outcome="already_done"}')
    _produce(settings, [(e.image_id, e.to_json()) for e in first])
    _wait_metric(worker, "imgstream_cdn_invalidations_total", '{outcome="already_done"}',
                 done)
    assert {i["Id"] for i in _ours(cloudfront, image_a) + _ours(cloudfront, image_b)} \
        == set(by_id)

    # Poison next to a good event: dead-lettered, and the agent goes on.
    too_long = _completed(settings, deterministic_id(marker, "long"), "v1",
                          key_override="enhanced/" + "x" * 4100 + ".jpg")
    a2 = _completed(settings, image_a, "v2")  # a new result for A: must be invalidated again
    _produce(settings, [("junk", b"not json at all"),
                        ("junk", b'{"event_type": "ImageCompleted", "image_id": 42}'),
                        (too_long.image_id, too_long.to_json()),
                        (a2.image_id, a2.to_json())])
    letters = []
    deadline = time.monotonic() + 60
    while len(letters) < 3 and time.monotonic() < deadline:
        letters = [e for e in (json.loads(m["value"]) for m in topic_reader("dead_letter",
                                                                            idle=0.5))
                   if e["stage"] == "cdn_sink"]
        time.sleep(0.5)
    assert len(letters) == 3, letters
    for letter in letters:
        schemas.validate_event("dead_letter", letter)
    assert [e["error_class"] for e in letters].count("SchemaViolation") == 2
    long_letter = next(e for e in letters if e["error_class"] == "PermanentError")
    assert long_letter["image_id"] == too_long.image_id
    assert "characters encoded" in long_letter["error_message"]

    after = _wait_invalidations(cloudfront, image_a, 2)
    newer = next(i for i in after if i["Id"] not in by_id)
    assert _paths(newer) == {f"/enhanced/{image_a}/current-large.jpg",
                             f"/enhanced/{image_a}/current-large.webp"}
    assert newer["InvalidationBatch"]["CallerReference"] == caller_reference(
        _paths(newer), [source_token(a2)])

    # Every event, invalidated or dead-lettered, is eventually committed (in-order acks
    # leave no gap behind).
    _wait_committed(settings)


def _wait_committed(settings, timeout: float = 30) -> None:
    topic = settings.topic_name(TOPIC_SPECS["completed"].name)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": settings.app_id, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        deadline = time.monotonic() + timeout
        while True:
            committed = consumer.committed([TopicPartition(topic, p) for p in partitions],
                                           timeout=10)
            behind = {}
            for tp in committed:
                _, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > 0 and tp.offset < high:
                    behind[tp.partition] = (tp.offset, high)
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"committed offsets behind the log end: {behind}")
            time.sleep(1.0)
    finally:
        consumer.close()


# -- delivery guarantee, with fakes (no fixtures: the sink alone) --------------------------

class _FakeEvent:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        from types import SimpleNamespace

        self.key = b"k"
        self.value = value
        self.message = SimpleNamespace(topic="images.completed", partition=partition,
                                       offset=offset, tp=("images.completed", partition))


class _FakeStream:
    def __init__(self, events: list[_FakeEvent]) -> None:
        self._events = events
        self.acked: list[_FakeEvent] = []

    def noack(self) -> _FakeStream:
        return self

    async def events(self):
        for event in self._events:
            yield event
        await asyncio.Event().wait()  # a live stream never ends

    async def ack(self, event: _FakeEvent) -> bool:
        self.acked.append(event)
        return True


class _BusyThenOk:
    """CloudFront answering TooManyInvalidationsInProgress twice, then accepting."""

    def __init__(self, stream: _FakeStream) -> None:
        self.stream = stream
        self.calls: list[tuple[list[str], str, int]] = []

    async def invalidate(self, paths: list[str], reference: str) -> str:
        from services.cloudfront import InvalidationsBusy

        self.calls.append((paths, reference, len(self.stream.acked)))
        if len(self.calls) <= 2:
            raise InvalidationsBusy("TooManyInvalidationsInProgress")
        return "I1"


class _RecordingTopic:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, key, value):
        self.sent.append(value)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_offsets_are_acked_only_after_the_invalidation_succeeded_and_in_order(stack):
    from agents.cdn_sink import CdnSink
    from streams.processing import RetryPolicy

    _, settings = stack
    good = _completed(settings, deterministic_id("fake", "a"), "v1")
    other = _completed(settings, deterministic_id("fake", "b"), "v1")
    events = [_FakeEvent(0, 10, good.to_json()), _FakeEvent(0, 11, b"junk"),
              _FakeEvent(1, 5, other.to_json())]
    stream = _FakeStream(events)
    cloudfront = _BusyThenOk(stream)
    dead_letters = _RecordingTopic()

    async def scenario() -> None:
        sink = CdnSink(cloudfront, dead_letters, max_paths=100, window_seconds=0.2,
                       retry=RetryPolicy(max_attempts=None, initial_backoff=0.01,
                                         max_backoff=0.02))
        task = asyncio.ensure_future(sink.run(stream))
        deadline = time.monotonic() + 10
        while len(stream.acked) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert len(cloudfront.calls) == 3                       # busy twice, then accepted
    assert [acked for _, _, acked in cloudfront.calls] == [0, 0, 0]  # nothing acked before
    assert len({ref for _, ref, _ in cloudfront.calls}) == 1  # retries reuse the reference
    assert len(cloudfront.calls[-1][0]) == 4
    # The junk at offset 11 was dead-lettered at once but acked only after offset 10.
    assert [(e.message.partition, e.message.offset) for e in stream.acked
            if e.message.partition == 0] == [(0, 10), (0, 11)]
    assert {e.message.offset for e in stream.acked} == {10, 11, 5}
    assert len(dead_letters.sent) == 1 and json.loads(dead_letters.sent[0])["stage"] == "cdn_sink"


class _AlwaysOk:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def invalidate(self, paths: list[str], reference: str) -> str:
        self.calls.append(paths)
        return f"I{len(self.calls)}"


def test_a_restarted_sink_does_not_invalidate_a_result_again(stack):
    """MySQL remembers which results were invalidated: a worker that restarts and gets
    the same completions again (their offsets were not committed) sends nothing."""
    from agents.cdn_sink import CdnSink
    from services.cdn_records import InvalidationRecords
    from services.database import Database, apply_migrations
    from streams.processing import RetryPolicy

    _, settings = stack
    run = uuid.uuid4().hex[:8]
    completions = [_completed(settings, deterministic_id("restart", run, str(i)), "v1")
                   for i in range(3)]
    fast = RetryPolicy(max_attempts=None, initial_backoff=0.01, max_backoff=0.02)

    async def one_life(cloudfront) -> _FakeStream:
        db = await Database.connect(settings)
        await apply_migrations(db)
        stream = _FakeStream([_FakeEvent(0, 100 + i, c.to_json())
                              for i, c in enumerate(completions)])
        sink = CdnSink(cloudfront, _RecordingTopic(), max_paths=100, window_seconds=0.1,
                       retry=fast, records=InvalidationRecords(lambda: db))
        task = asyncio.ensure_future(sink.run(stream))
        deadline = time.monotonic() + 10
        while len(stream.acked) < len(completions) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await db.close()
        return stream

    first, second = _AlwaysOk(), _AlwaysOk()
    assert len(asyncio.run(one_life(first)).acked) == 3
    assert len(first.calls) == 1 and len(first.calls[0]) == 6  # 3 results x 2 aliases
    again = asyncio.run(one_life(second))                       # a new process, same events
    assert len(again.acked) == 3 and second.calls == []
