"""The dead_letters agent on a real worker: records letters, survives poison."""

from __future__ import annotations

import asyncio

import pytest
import requests
from confluent_kafka import Producer

from services.database import Database
from streams.records import DeadLetter, deterministic_id
from streams.topics import TOPIC_SPECS
from tests.conftest import RUN_ID
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def _produce(settings, key: bytes | None, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.topic_name(TOPIC_SPECS["dead_letter"].name), key=key, value=value)
    assert producer.flush(10) == 0




def _analyzed_image(settings, image_id: str, status: str = "analyzed") -> None:
    """A photo row as assess leaves it, without the pipeline racing to complete it."""
    async def insert() -> None:
        db = await Database.connect(settings, create=False)
        try:
            await db.execute(
                "INSERT INTO product_images (image_id, seller_id, sku_id, original_url,"
                " content_sha256, format, width, height, file_size_bytes, status) VALUES"
                " (%s, 'dlq', 'SKU-dlq', 's3://imgstream-test/dlq.jpg', %s, 'jpeg', 640, 480,"
                " 1000, %s)", (image_id, "0" * 64, status))
        finally:
            await db.close()

    asyncio.run(insert())


def _letter(image_id: str | None, marker: str) -> DeadLetter:
    return DeadLetter.new(
        event_id=deterministic_id("test-letter", marker), stage="assess",
        error_class="PermanentError", error_message=f"cannot decode image ({marker})",
        source_topic="images.uploaded", source_partition=0, source_offset=1,
        source_key=image_id, image_id=image_id, attempts=1, original_event='{"x": 1}',
    )


def test_poison_does_not_stop_the_agent_and_letters_are_recorded(worker, stack, db_query):
    _, settings = stack
    image_id = deterministic_id("dlq-image", RUN_ID)
    _analyzed_image(settings, image_id)

    _produce(settings, b"junk", b"\x00\x01 this is not a dead letter")
    _produce(settings, None, b'{"event_type": "DeadLetter"}')
    letter = _letter(image_id, "after-poison")
    _produce(settings, image_id.encode(), letter.to_json())
    _produce(settings, image_id.encode(), letter.to_json())  # redelivery: recorded once

    rows = wait_for(lambda: db_query(
        "SELECT * FROM dead_letters WHERE event_id = %s", (letter.event_id,)))
    assert len(rows) == 1
    assert rows[0]["stage"] == "assess" and rows[0]["error_class"] == "PermanentError"
    [image] = db_query("SELECT status, last_error FROM product_images WHERE image_id = %s",
                       (image_id,))
    assert image["status"] == "failed" and "cannot decode image" in image["last_error"]

    metrics = requests.get(worker.base_url + "/metrics", timeout=10).text
    assert 'imgstream_dead_letters_total{error_class="SchemaViolation",stage="dead_letters"} 2.0' \
        in metrics
    assert 'imgstream_events_processed_total{outcome="ok",stage="dead_letters"}' in metrics


def test_a_letter_never_overwrites_a_published_result(worker, stack, db_query):
    _, settings = stack
    image_id = deterministic_id("dlq-completed", RUN_ID)
    _analyzed_image(settings, image_id, status="completed")
    letter = _letter(image_id, "late-replay")
    _produce(settings, image_id.encode(), letter.to_json())
    wait_for(lambda: db_query("SELECT 1 FROM dead_letters WHERE event_id = %s",
                              (letter.event_id,)))
    [image] = db_query("SELECT status, last_error FROM product_images WHERE image_id = %s",
                       (image_id,))
    assert image["status"] == "completed" and image["last_error"] is None
