"""The public quality events as a downstream team sees them, on the real broker.

Valid QualityAssessed and ImageCompleted events (built with the records, serialized as
the pipeline does) plus invalid messages go to topics of their own; then ``imgstream
tail``, a fresh confluent-kafka group, kcat and the example consumer each read them. The
topics live under the session's prefix plus ``public-events.``: a worker of the same
session never consumes them, and the session cleanup deletes them.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import schemas
from imaging.errors import SchemaViolation
from streams.records import ImageCompleted, QualityAssessed, deterministic_id
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SCHEMA_DIR = ROOT / "schemas" / "events" / "v1"
INVALID = [b"{not json", b'{"event_type": "QualityAssessed", "tier": "poor"}']


def _assessed(n: int, tier: str, seller: str) -> QualityAssessed:
    fields = copy.deepcopy(schemas.load_schema("quality_assessed")["examples"][0])
    for name in ("event_id", "event_type", "schema_version", "occurred_at"):
        fields.pop(name)
    fields.update(image_id=deterministic_id("public-events", str(n)), seller_id=seller,
                  sku_id=f"SKU-{n}", tier=tier,
                  overall_score={"poor": 41.5, "good": 71.0, "excellent": 88.0}[tier])
    return QualityAssessed.new(event_id=deterministic_id("assessed", str(n)), **fields)


def _completed(n: int, after_tier: str, seller: str) -> ImageCompleted:
    fields = copy.deepcopy(schemas.load_schema("image_completed")["examples"][0])
    for name in ("event_id", "event_type", "schema_version", "occurred_at"):
        fields.pop(name)
    fields["after"]["tier"] = after_tier
    fields.update(image_id=deterministic_id("public-events", str(n)), seller_id=seller,
                  sku_id=f"SKU-{n}")
    return ImageCompleted.new(event_id=deterministic_id("completed", str(n)), **fields)


ASSESSED = [_assessed(1, "poor", "seller-a"), _assessed(2, "good", "seller-a"),
            _assessed(3, "poor", "seller-b"), _assessed(4, "excellent", "seller-b")]
COMPLETED = [_completed(1, "excellent", "seller-a"), _completed(3, "poor", "seller-b")]
POOR_IDS = {e.image_id for e in ASSESSED if e.tier == "poor"}


@pytest.fixture(scope="module")
def public(stack):
    """Settings whose topics are this module's, with the events produced (one partition
    each, invalid messages first, so every reader meets them before the valid ones)."""
    _, session = stack
    settings = session.model_copy(
        update={"topic_prefix": f"{session.topic_prefix}public-events."})
    topics = {"assessed": settings.topic_name("images.assessed"),
              "completed": settings.topic_name("images.completed")}
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        future.result(timeout=15)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for kind, events in (("assessed", ASSESSED), ("completed", COMPLETED)):
        for value in INVALID:
            producer.produce(topics[kind], key=b"bad", value=value)
        for event in events:
            schemas.validate_event(event.schema_name, event.to_document())
            producer.produce(topics[kind], key=event.image_id.encode(), value=event.to_json())
    assert producer.flush(15) == 0
    env = {**os.environ, "IMGSTREAM_TOPIC_PREFIX": settings.topic_prefix}
    yield settings, topics, env
    for future in admin.delete_topics(list(topics.values()), operation_timeout=10).values():
        future.result(timeout=15)


def _run(argv: list[str], env: dict[str, str], timeout: float = 60
         ) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_tail_prints_exactly_the_poor_assessments(public):
    _, _, env = public
    started = time.monotonic()
    result = _run([sys.executable, "-m", "streams.cli", "tail", "assessed", "--tier", "poor",
                   "--from-beginning", "--max", str(len(POOR_IDS)), "--json"], env)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["image_id"] for e in printed} == POOR_IDS
    assert all(e["tier"] == "poor" for e in printed)
    for event in printed:
        schemas.validate_event("quality_assessed", event)
    # Both invalid messages came first: reported on stderr, not fatal.
    assert result.stderr.count("invalid event") == len(INVALID), result.stderr
    assert "not JSON" in result.stderr and "is a required property" in result.stderr
    print(f"tail: {len(printed)} events in {time.monotonic() - started:.1f}s")


def test_tail_of_completed_filters_by_seller_and_prints_a_line(public):
    _, _, env = public
    result = _run([sys.executable, "-m", "streams.cli", "tail", "completed", "--seller",
                   "seller-b", "--from-beginning", "--max", "1"], env)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    expected = next(e for e in COMPLETED if e.seller_id == "seller-b")
    assert expected.image_id in line and "seller-b/" in line
    assert "completed" in line and "poor->poor" in line and expected.cdn_url in line


def test_a_fresh_consumer_group_reads_every_event_and_they_validate(public):
    settings, topics, _ = public
    for kind, events in (("assessed", ASSESSED), ("completed", COMPLETED)):
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                             "group.id": f"public-events-{time.monotonic_ns()}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "session.timeout.ms": 6000})
        consumer.subscribe([topics[kind]])
        values, deadline = [], time.monotonic() + 45
        try:
            while len(values) < len(INVALID) + len(events) and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    values.append((msg.key(), msg.value()))
        finally:
            consumer.close()
        assert [v for _, v in values[:len(INVALID)]] == INVALID
        valid = values[len(INVALID):]
        schema = events[0].schema_name
        for key, value in valid:
            document = json.loads(value)
            schemas.validate_event(schema, document)
            assert key == document["image_id"].encode()
        assert [json.loads(v)["event_id"] for _, v in valid] == [e.event_id for e in events]
        with pytest.raises(SchemaViolation):
            schemas.validate_event(schema, json.loads(INVALID[1]))


def test_kcat_reads_the_events(public):
    settings, topics, _ = public
    kcat = ROOT / "scripts" / "kcat"
    try:
        probe = _run([str(kcat), "-b", settings.kafka_bootstrap, "-L", "-t",
                      topics["assessed"]], dict(os.environ), timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"scripts/kcat cannot run here: {exc}")
    if probe.returncode != 0:
        pytest.skip(f"scripts/kcat cannot talk to the broker: {probe.stderr.strip()[:200]}")
    result = _run([str(kcat), "-b", settings.kafka_bootstrap, "-C", "-t", topics["assessed"],
                   "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t", 1) for line in result.stdout.splitlines()]
    assert [value.encode() for _, value in rows[:len(INVALID)]] == INVALID
    for key, value in rows[len(INVALID):]:
        document = json.loads(value)
        schemas.validate_event("quality_assessed", document)
        assert key == document["image_id"]
    assert len(rows) == len(INVALID) + len(ASSESSED)


def test_the_example_consumer_prints_the_poor_ones(public):
    settings, topics, env = public
    script = ROOT / "examples" / "quality_consumer.py"
    result = _run([sys.executable, str(script), str(SCHEMA_DIR), "--topic",
                   topics["assessed"], "--bootstrap", settings.kafka_bootstrap,
                   "--from-beginning", "--max", str(len(POOR_IDS))], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert {line.split()[0] for line in lines} == POOR_IDS
    assert all(" poor " in line for line in lines)
    assert result.stderr.count("skipped offset") == len(INVALID), result.stderr


def test_the_example_consumer_needs_no_imgstream_import():
    source = Path(ROOT / "examples" / "quality_consumer.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if any(
        name in line for name in ("streams", "schemas", "imaging", "agents", "services"))]
