"""Every event record has a schema, the two agree, and what the code builds validates."""

import pytest

import schemas
from imaging.errors import SchemaViolation
from schemas.compat import released_documents
from streams.records import ALL_EVENTS, DeadLetter, ImageUploaded, deterministic_id
from streams.topics import TOPIC_SPECS

BASE_FIELDS = {"event_id", "event_type", "schema_version", "occurred_at"}


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.__name__)
def test_record_fields_match_schema(event):
    schema = schemas.load_schema(event.schema_name)
    fields = set(event._options.fields)
    assert fields == set(schema["properties"]), "record and schema list different fields"
    # 1.0 fields are all required (nullable when optional); later minors add optional ones.
    released = released_documents("1.0").get(f"{event.schema_name}.json")
    first_release = set(released["properties"]) if released else fields
    assert set(schema["required"]) == fields & first_release
    assert fields - first_release <= set(event._options.defaults)
    assert schema["properties"]["event_type"] == {"const": event.__name__}
    assert fields >= BASE_FIELDS


def test_every_schema_belongs_to_an_event_and_a_topic():
    names = {e.schema_name for e in ALL_EVENTS}
    assert set(schemas.schema_names()) == names
    assert {spec.event.schema_name for spec in TOPIC_SPECS.values()} == names


@pytest.mark.parametrize("name", schemas.schema_names())
def test_schemas_are_valid_and_examples_validate(name):
    validator = schemas.validator(name)  # check_schema runs here
    for example in schemas.load_schema(name).get("examples", []):
        validator.validate(example)


def _uploaded(**overrides):
    fields = dict(
        image_id="0" * 32, seller_id="seller-1", sku_id="SKU-1", product_group_id=None,
        filename="a.jpg", original_uri="s3://imgstream-originals/originals/ab/x.jpg",
        content_sha256="a" * 64, content_type="image/jpeg", format="jpeg", size_bytes=10,
        width=100, height=80, orientation=1,
    )
    fields.update(overrides)
    return ImageUploaded.new(event_id=deterministic_id("t"), **fields)


def test_built_events_validate_and_round_trip():
    event = _uploaded()
    schemas.validate_event(event.schema_name, event.to_document())
    assert ImageUploaded.from_document(event.to_document()) == event


def test_unknown_fields_are_ignored_when_reading():
    event = _uploaded()
    document = {**event.to_document(), "added_in_1_1": "x"}
    assert ImageUploaded.from_document(document) == event


@pytest.mark.parametrize("bad", [
    {"seller_id": "../etc"}, {"width": 0}, {"original_uri": "/tmp/x.jpg"},
    {"content_sha256": "xyz"}, {"format": "gif"},
])
def test_violations_name_the_field(bad):
    document = {**_uploaded().to_document(), **bad}
    with pytest.raises(SchemaViolation) as info:
        schemas.validate_event("image_uploaded", document)
    assert next(iter(bad)) in str(info.value)


def test_dead_letter_validates():
    letter = DeadLetter.new(
        event_id=deterministic_id("x"), stage="assess", error_class="SchemaViolation",
        error_message="bad", source_topic="images.uploaded", source_partition=0,
        source_offset=3, source_key=None, image_id=None, attempts=1, original_event="{",
    )
    schemas.validate_event("dead_letter", letter.to_document())
