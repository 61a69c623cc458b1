"""Poison and forged events produced with confluent-kafka straight onto the topics: each
is dead-lettered with its reason, nothing is paid or read for it, and the stages go on."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from imaging.samples import generate_sample_batch
from streams.records import AIEnhancementApproved, deterministic_id
from streams.topics import TOPIC_SPECS
from tests.integration.test_assess_agent import _json_events, _wait_events
from tests.integration.test_ingest_api import upload
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def _produce(settings, short: str, key: bytes | None, value: bytes | None) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap,
                         "message.max.bytes": 3_000_000})
    producer.produce(settings.topic_name(TOPIC_SPECS[short].name), key=key, value=value)
    assert producer.flush(10) == 0


def _forged_approval(settings) -> AIEnhancementApproved:
    request_id = deterministic_id("forged-request")
    return AIEnhancementApproved.new(
        event_id=deterministic_id("forged-approval"), request_id=request_id,
        reservation_id=request_id, image_id=deterministic_id("forged-image"),
        job_id=deterministic_id("forged-job"), budget_key="2026-12-05",
        budget_day="2026-12-05", reserved_usd=5.0,
        plan={"source_uri": f"s3://{settings.originals_bucket}/originals/aa/x.jpg",
              "steps": [{"order": 1, "operation": "background", "method": "ai",
                         "params": {}, "estimated_cost_usd": 0.07, "fallback_reason": None,
                         "model_id": "stability.stable-image-remove-background-v1:0"}]})


def test_poison_and_forgeries_are_dead_lettered_and_photos_still_complete(
        worker, stack, topic_reader, db_query):
    _, settings = stack
    forged = _forged_approval(settings)
    _produce(settings, "ai", forged.image_id.encode(), forged.to_json())
    _produce(settings, "assessed", b"big", b"y" * 2_000_000)
    _produce(settings, "assessed", b"null", None)
    _produce(settings, "enhanced", b"type", json.dumps({"event_type": "Nope"}).encode())

    letters = _wait_events(topic_reader, "dead_letter",
                           lambda e: e["stage"] in ("enhance_ai", "route", "finalize"), 4,
                           timeout=90)
    by_stage: dict[str, list[dict]] = {}
    for letter in letters:
        by_stage.setdefault(letter["stage"], []).append(letter)
    [refused] = [e for e in by_stage["enhance_ai"] if e["error_class"] == "ForgedEvent"]
    assert "not issued by the budget gate" in refused["error_message"]
    big = [e for e in by_stage["route"] if "truncated" in e["original_event"]]
    assert big and big[0]["original_event"].endswith("[truncated: 2000000 bytes in all]")
    assert any("no value (null)" in e["error_message"] for e in by_stage["route"])
    assert by_stage["finalize"][0]["error_class"] == "SchemaViolation"
    # Nothing was reserved or settled for the forged approval.
    settled = [e for e in _json_events(topic_reader("ai_budget", idle=0.5))
               if e.get("request_id") == forged.request_id]
    assert settled == []

    image_id = upload(worker, next(iter(generate_sample_batch(seed=91, count=1))).data,
                      sku_id="after-forgeries").json()["image_id"]
    wait_for(lambda: db_query("SELECT status FROM product_images WHERE image_id = %s AND "
                              "status IN ('completed', 'skipped')", (image_id,)), 120)
