"""Read a topic from the beginning with confluent-kafka (an independent client)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.topics import TOPIC_SPECS


def read_topic(settings, short: str, *, expect: int | None = None,
               idle: float = 1.5, timeout: float = 30.0) -> list[dict]:
    """All messages of a topic: [{key, value, partition, offset}]; stops when idle."""
    name = settings.topic_name(TOPIC_SPECS[short].name)
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"reader-{time.monotonic_ns()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        meta = consumer.list_topics(name, timeout=10).topics.get(name)
        if meta is None or meta.error is not None:
            return []
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in meta.partitions])
        messages: list[dict] = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if (expect is None or len(messages) >= expect) and time.monotonic() - last > idle:
                    break
                continue
            last = time.monotonic()
            messages.append({"key": msg.key(), "value": msg.value(),
                             "partition": msg.partition(), "offset": msg.offset()})
        return messages
    finally:
        consumer.close()
