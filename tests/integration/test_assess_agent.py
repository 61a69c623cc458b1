"""The assess agent on a real worker: reports, MySQL rows, redelivery, dead letters."""

from __future__ import annotations

import hashlib
import json
import time

import boto3
import pytest
from confluent_kafka import Producer

import schemas
from imaging.samples import generate_sample_batch
from profiles import load_profile
from streams.records import ImageUploaded, deterministic_id, image_id_for
from streams.topics import TOPIC_SPECS
from tests.integration.test_ingest_api import upload

pytestmark = pytest.mark.integration


def _json_events(messages) -> list[dict]:
    """The JSON objects among ``messages`` (other tests put poison on the same topics)."""
    events = []
    for message in messages:
        try:
            event = json.loads(message["value"])
        except (TypeError, ValueError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _holds(predicate, event: dict) -> bool:
    try:
        return bool(predicate(event))
    except (KeyError, TypeError):  # a foreign event without the fields asked about
        return False


def _wait_events(topic_reader, short: str, predicate, count: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = [e for e in _json_events(topic_reader(short, idle=0.5)) if _holds(predicate, e)]
        if len(found) >= count:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{len(found)}/{count} events on {short} after {timeout}s")


def _produce(settings, short: str, key: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.topic_name(TOPIC_SPECS[short].name), key=key.encode(),
                     value=value)
    assert producer.flush(10) == 0


def test_uploads_are_assessed_recorded_and_redelivery_is_harmless(worker, stack, db_query,
                                                                   topic_reader):
    _, settings = stack
    samples = {s.name: s for s in generate_sample_batch()}
    chosen = ["mug-plain-sharp.jpg", "bottle-plain-blurred.jpg", "sneaker-plain-dark.jpg"]
    ids = {}
    for name in chosen:
        response = upload(worker, samples[name].data, filename=name, sku_id=name[:-4])
        assert response.status_code in (200, 201), response.text
        ids[name] = response.json()["image_id"]

    events = _wait_events(topic_reader, "assessed", lambda e: e["image_id"] in ids.values(),
                          len(chosen))
    by_image = {e["image_id"]: e for e in events}
    for event in events:
        schemas.validate_event("quality_assessed", event)
        assert event["profile"] == {"name": "default", "version": load_profile("default").version}
    sharp, blurred, dark = (by_image[ids[n]] for n in chosen)
    assert "blurry" in blurred["issues"] and "blurry" not in sharp["issues"]
    assert "underexposed" in dark["issues"]
    assert sharp["overall_score"] > blurred["overall_score"]
    assert sharp["overall_score"] > dark["overall_score"]

    rows = db_query("SELECT image_id, quality_tier, overall_score FROM quality_metrics "
                    "WHERE metric_type = 'before'")
    assert {r["image_id"] for r in rows} >= set(ids.values())
    statuses = db_query("SELECT image_id, status FROM product_images WHERE image_id IN "
                        "(%s, %s, %s)", tuple(ids.values()))
    # analyzed, or already further down the pipeline
    assert {r["status"] for r in statuses} <= {"analyzed", "completed", "skipped"}

    # Redeliver one upload event: same result, no second row.
    uploaded = [m for m in topic_reader("uploaded") if m["key"] == ids[chosen[0]].encode()]
    _produce(settings, "uploaded", ids[chosen[0]], uploaded[0]["value"])
    again = _wait_events(topic_reader, "assessed", lambda e: e["image_id"] == ids[chosen[0]], 2)
    assert len({e["event_id"] for e in again}) == 1
    count = db_query("SELECT COUNT(*) AS n FROM quality_metrics WHERE image_id = %s AND "
                     "metric_type = 'before'", (ids[chosen[0]],))
    assert count[0]["n"] == 1


def _uploaded_event(uri: str, sha: str, sku: str = "k-poison") -> ImageUploaded:
    image_id = image_id_for("s-poison", sku, sha)
    return ImageUploaded.new(
        event_id=deterministic_id("test", image_id), image_id=image_id, seller_id="s-poison",
        sku_id=sku, product_group_id=None, filename=None, original_uri=uri,
        content_sha256=sha, content_type="image/jpeg", format="jpeg", size_bytes=10,
        width=100, height=100, orientation=1)


def test_missing_and_corrupt_images_are_dead_lettered_and_the_agent_goes_on(
        worker, stack, topic_reader):
    _, settings = stack
    missing_uri = f"s3://{settings.originals_bucket}/originals/00/{'0' * 64}.jpg"
    missing = _uploaded_event(missing_uri, "0" * 64)
    missing_id = missing.image_id
    _produce(settings, "uploaded", missing_id, missing.to_json())

    corrupt = b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 50
    sha = hashlib.sha256(corrupt).hexdigest()
    key = f"originals/{sha[:2]}/{sha}.jpg"
    boto3.client("s3", endpoint_url=settings.s3_endpoint,
                 aws_access_key_id=settings.s3_access_key,
                 aws_secret_access_key=settings.s3_secret_key,
                 region_name=settings.s3_region).put_object(
        Bucket=settings.originals_bucket, Key=key, Body=corrupt)
    corrupt = _uploaded_event(f"s3://{settings.originals_bucket}/{key}", sha)
    _produce(settings, "uploaded", corrupt.image_id, corrupt.to_json())
    _produce(settings, "uploaded", "junk", b'{"event_type": "ImageUploaded", "width": -1}')
    # Schema-valid but forged: another bucket, and an image id that is not its content's.
    other_bucket = _uploaded_event(f"s3://someone-elses-bucket/{key}", sha, sku="k-forged")
    _produce(settings, "uploaded", other_bucket.image_id, other_bucket.to_json())
    wrong_id = _uploaded_event(f"s3://{settings.originals_bucket}/{key}", sha, sku="k-id")
    wrong_id.image_id = deterministic_id("someone-elses-photo")
    _produce(settings, "uploaded", wrong_id.image_id, wrong_id.to_json())
    _produce(settings, "uploaded", "null", None)  # a tombstone

    letters = _wait_events(topic_reader, "dead_letter", lambda e: e["stage"] == "assess", 6)
    by_class: dict[str, list[dict]] = {}
    for letter in letters:
        by_class.setdefault(letter["error_class"], []).append(letter)
    assert {"ObjectMissing", "UndecodableImage", "SchemaViolation", "ForgedEvent"} <= set(
        by_class)
    forged = " ".join(e["error_message"] for e in by_class["ForgedEvent"])
    assert "someone-elses-bucket" in forged and "does not match" in forged
    assert any("no value (null)" in e["error_message"] for e in by_class["SchemaViolation"])
    by_class = {name: found[0] for name, found in by_class.items()}
    assert by_class["ObjectMissing"]["image_id"] == missing_id
    assert "cannot decode" in by_class["UndecodableImage"]["error_message"]
    for letter in letters:
        schemas.validate_event("dead_letter", letter)

    fresh = upload(worker, next(iter(generate_sample_batch())).data, sku_id="after-poison")
    image_id = fresh.json()["image_id"]
    _wait_events(topic_reader, "assessed", lambda e: e["image_id"] == image_id, 1)
