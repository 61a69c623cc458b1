"""Print the poor-quality photos from imgstream's public events: a consumer to copy.

Needs only confluent-kafka and jsonschema. Every event is validated against the published
schema (schemas/events/v1 of the imgstream repository) before it is used; an invalid one
is reported and skipped. Unknown fields are fine: minor versions add optional fields.

    python quality_consumer.py path/to/schemas/events/v1 --from-beginning
    python quality_consumer.py path/to/schemas/events/v1 --event completed --max 10
"""

import argparse
import json
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

SCHEMAS = {"assessed": "quality_assessed.json", "completed": "image_completed.json"}


def load_validator(folder: Path, event: str) -> Draft202012Validator:
    common = json.loads((folder / "common.json").read_text())
    registry = Registry().with_resource(common["$id"], Resource.from_contents(common))
    return Draft202012Validator(json.loads((folder / SCHEMAS[event]).read_text()),
                                registry=registry)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schemas", type=Path, help="folder with common.json and the events")
    parser.add_argument("--event", choices=SCHEMAS, default="assessed")
    parser.add_argument("--topic", help="default: images.<event>")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--group", default=f"quality-consumer-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--tier", default="poor")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--max", type=int, help="stop after printing this many photos")
    args = parser.parse_args()

    validator = load_validator(args.schemas, args.event)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                         "auto.offset.reset": "earliest" if args.from_beginning else "latest",
                         "session.timeout.ms": 6000})
    consumer.subscribe([args.topic or f"images.{args.event}"])
    printed = 0
    try:
        while args.max is None or printed < args.max:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            try:
                event = json.loads(msg.value() or b"null")
                validator.validate(event)
            except (ValueError, ValidationError) as exc:  # not JSON, or not the contract
                print(f"skipped offset {msg.offset()}: {exc}".splitlines()[0], file=sys.stderr)
                continue
            # ImageCompleted: the tier of what was published (after), else before.
            quality = (event["after"] or event["before"]) if args.event == "completed" else event
            if quality["tier"] == args.tier:
                # From 1.2, ids with spaces, '/' or non-ASCII letters come as *_label
                # beside their key; keep the key for joins, show the label.
                seller = event.get("seller_label") or event["seller_id"]
                sku = event.get("sku_label") or event["sku_id"]
                print(f"{event['image_id']} {seller}/{sku} "
                      f"{quality['tier']} {quality['overall_score']:.1f} "
                      f"{','.join(quality.get('issues', [])) or '-'}", flush=True)
                printed += 1
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
