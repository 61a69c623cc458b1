"""The compiled validator (jsonschema-rs) agrees with the reference one (jsonschema)."""

import copy

import pytest

import schemas


def _variants(example: dict) -> list[dict]:
    """The example, and for every field: without it, with a wrong type, set to null."""
    out = [example]
    for field in example:
        missing = {k: v for k, v in example.items() if k != field}
        wrong = {**example, field: ["not", "this"] if not isinstance(example[field], list)
                 else "not a list"}
        out += [missing, wrong, {**example, field: None}]
    return out


@pytest.mark.parametrize("name", schemas.schema_names())
def test_fast_and_reference_validators_agree(name):
    reference, fast = schemas.validator(name), schemas.fast_validator(name)
    examples = schemas.load_schema(name).get("examples", [])
    for example in examples:
        for document in _variants(copy.deepcopy(example)):
            assert fast.is_valid(document) == reference.is_valid(document), document


def test_a_violation_still_names_the_field():
    from imaging.errors import SchemaViolation
    document = copy.deepcopy(schemas.load_schema("image_uploaded")["examples"][0])
    document["width"] = -1
    with pytest.raises(SchemaViolation, match="width"):
        schemas.validate_event("image_uploaded", document)
