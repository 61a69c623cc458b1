"""``imgstream tail``: follow the public quality events the way a downstream team would.

A plain confluent-kafka consumer (no faust) in its own consumer group, which validates
every event against its published schema before using it: it shows what the contract
promises and doubles as a debugging tool. An event that is not valid JSON or does not
match its schema is reported on stderr and skipped; the tail keeps going.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, Message

import schemas
from imaging.errors import SchemaViolation
from streams.identity import keys_meant_by
from streams.settings import Settings
from streams.topics import TOPIC_SPECS


@dataclass(frozen=True)
class TailOptions:
    event: str  # short topic name of a public event: assessed or completed
    tier: str | None = None
    seller: str | None = None
    from_beginning: bool = False
    group: str | None = None
    max_events: int | None = None
    as_json: bool = False


def published_tier(document: dict[str, Any]) -> str:
    """The tier buyers see: QualityAssessed's, or ImageCompleted's after (else before)."""
    if document["event_type"] == "ImageCompleted":
        return (document["after"] or document["before"])["tier"]
    return document["tier"]


def matches(document: dict[str, Any], options: TailOptions) -> bool:
    return ((options.tier is None or published_tier(document) == options.tier)
            and (options.seller is None
                 or document["seller_id"] in keys_meant_by(options.seller)))


def format_event(document: dict[str, Any]) -> str:
    """One human-readable line per event (seller and SKU as the catalogue has them)."""
    seller = document.get("seller_label") or document["seller_id"]
    sku = document.get("sku_label") or document["sku_id"]
    head = f"{document['occurred_at']} {document['image_id']} {seller}/{sku}"
    if document["event_type"] == "QualityAssessed":
        issues = ",".join(document["issues"]) or "-"
        return (f"{head} {document['tier']:<9} {document['overall_score']:6.2f} "
                f"issues={issues}")
    before, after = document["before"], document["after"] or document["before"]
    kept = " kept-original" if document["kept_original"] else ""
    return (f"{head} {document['status']:<9} {before['tier']}->{after['tier']} "
            f"{before['overall_score']:.2f}->{after['overall_score']:.2f} "
            f"${document['total_cost_usd']:.4f}{kept} {document['cdn_url'] or '-'}")


def decode(message: Message, schema_name: str) -> dict[str, Any]:
    """The validated event of a message; SchemaViolation says why it is not one."""
    try:
        document = json.loads(message.value() or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaViolation(f"not JSON: {exc}") from exc
    schemas.validate_event(schema_name, document)
    return document


def consumer_config(settings: Settings, options: TailOptions) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": options.group or f"imgstream-tail-{uuid.uuid4().hex[:12]}",
        # --from-beginning applies when the group has no committed offset: always for
        # the default throw-away group, which also commits nothing.
        "auto.offset.reset": "earliest" if options.from_beginning else "latest",
        "enable.auto.commit": options.group is not None,
        "session.timeout.ms": 6000,  # tansu: group joins wait about half of it
    }


def run_tail(settings: Settings, options: TailOptions, out: TextIO = sys.stdout,
             err: TextIO = sys.stderr) -> int:
    """Print matching events until ``max_events`` were printed (or forever)."""
    spec = TOPIC_SPECS[options.event]
    topic = settings.topic_name(spec.name)
    consumer = Consumer(consumer_config(settings, options))
    consumer.subscribe([topic])
    printed = 0
    try:
        while options.max_events is None or printed < options.max_events:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().fatal():
                    print(f"tail: {message.error()}", file=err, flush=True)
                    return 1
                if message.error().code() != KafkaError._PARTITION_EOF:
                    print(f"tail: {message.error()}", file=err, flush=True)
                continue
            try:
                document = decode(message, spec.event.schema_name)
            except SchemaViolation as exc:
                print(f"invalid event {topic}[{message.partition()}]@{message.offset()}: "
                      f"{exc}", file=err, flush=True)
                continue
            if matches(document, options):
                print(json.dumps(document, separators=(",", ":")) if options.as_json
                      else format_event(document), file=out, flush=True)
                printed += 1
        return 0
    finally:
        consumer.close()
