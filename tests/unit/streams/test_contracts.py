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


def _labelled(**overrides):
    from streams.identity import parse_catalogue_id
    from streams.records import image_id_for

    seller, sku = parse_catalogue_id("Müller GmbH"), parse_catalogue_id("Tasse 0,5 l / blau")
    fields = dict(seller_id=seller.key, sku_id=sku.key, seller_label=seller.label,
                  sku_label=sku.label, image_id=image_id_for(seller.key, sku.key, "a" * 64))
    fields.update(overrides)
    return _uploaded(**fields)


def _released_validator(version: str, name: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    documents = released_documents(version)
    registry = Registry().with_resource(
        "https://imgstream.dev/schemas/events/v1/common.json",
        Resource.from_contents(documents["common.json"]))
    return Draft202012Validator(documents[f"{name}.json"], registry=registry)


def test_labels_travel_only_when_the_id_is_not_its_own_key():
    plain = _uploaded().to_document()
    assert not {"seller_label", "sku_label", "product_group_label"} & plain.keys()
    labelled = _labelled()
    document = labelled.to_document()
    schemas.validate_event("image_uploaded", document)
    assert (document["seller_label"], document["sku_label"]) == ("Müller GmbH",
                                                                 "Tasse 0,5 l / blau")
    assert "product_group_label" not in document
    assert ImageUploaded.from_document(document) == labelled
    # Consumers still on a released schema read the new events (VERSIONING.md).
    for version in ("1.0", "1.1"):
        assert list(_released_validator(version, "image_uploaded").iter_errors(document)) == []


def test_a_label_is_at_most_128_characters():
    document = {**_labelled().to_document(), "seller_label": "x" * 129}
    with pytest.raises(SchemaViolation, match="seller_label"):
        schemas.validate_event("image_uploaded", document)


def test_a_label_that_does_not_make_its_key_is_forged():
    from imaging.errors import ForgedEvent
    from streams.records import image_id_for
    from streams.trust import check_upload_identity

    def plain(**fields):
        return _uploaded(image_id=image_id_for("seller-1", "SKU-1", "a" * 64), **fields)

    check_upload_identity(_labelled())
    check_upload_identity(plain())
    for forged in (_labelled(seller_label="Another Seller"),
                   plain(sku_label="SKU 1"),  # a label beside a plain key
                   plain(product_group_label="mugs")):  # a label without a key
        with pytest.raises(ForgedEvent, match="_label"):
            check_upload_identity(forged)
