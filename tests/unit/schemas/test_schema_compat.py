"""Schemas change only compatibly within a major version (schemas/VERSIONING.md).

The first tests hold the current schemas to every frozen release; the rest pin down each
rule of the comparator on small synthetic schemas.
"""

import copy

import pytest

import schemas
from schemas.compat import (
    breaking_changes,
    current_documents,
    release_breaking_changes,
    released_documents,
    released_versions,
)
from streams.records import SCHEMA_VERSION


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_a_release_of_the_current_major_exists():
    majors = {_version(v)[0] for v in released_versions()}
    assert schemas.MAJOR_VERSION in majors


@pytest.mark.parametrize("version", released_versions())
def test_current_schemas_are_compatible_with_release(version):
    if _version(version)[0] != schemas.MAJOR_VERSION:
        pytest.skip(f"release {version} belongs to another major version")
    problems = release_breaking_changes(released_documents(version),
                                        current_documents(schemas.MAJOR_VERSION))
    assert not problems, (f"breaking changes against release {version} (make them "
                          "additive or start a new major version):\n" + "\n".join(problems))


def test_producers_write_at_least_the_latest_release():
    latest = max((v for v in released_versions()
                  if _version(v)[0] == schemas.MAJOR_VERSION), key=_version)
    assert _version(SCHEMA_VERSION) >= _version(latest)


def test_documentation_edits_to_real_schemas_are_not_breaking():
    """A description edit is not breaking: the comparator ignores it."""
    released = released_documents("1.0")
    edited = copy.deepcopy(released)
    edited["quality_assessed.json"]["properties"]["tier"]["description"] = "changed"
    edited["common.json"]["$defs"]["tier"]["title"] = "Tier"
    edited["quality_assessed.json"]["examples"] = []
    assert release_breaking_changes(released, edited) == []


EVENT = {
    "type": "object",
    "required": ["id", "tier"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "tier": {"type": "string", "enum": ["excellent", "good", "poor"]},
        "score": {"type": "number", "minimum": 0, "maximum": 100},
        "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def changed(edit) -> list[str]:
    new = copy.deepcopy(EVENT)
    edit(new)
    return breaking_changes(EVENT, new, name="event.json")


def test_identical_schema_is_compatible():
    assert breaking_changes(EVENT, copy.deepcopy(EVENT)) == []


def test_new_optional_property_is_fine():
    assert changed(lambda s: s["properties"].update(extra={"type": "integer"})) == []


def test_description_change_is_fine():
    def edit(s):
        s["description"] = "new words"
        s["properties"]["score"]["description"] = "0-100"
        s["properties"]["tier"]["examples"] = ["good"]
    assert changed(edit) == []


def test_removed_property_is_breaking():
    problems = changed(lambda s: s["properties"].pop("note"))
    assert problems == ["event.json: /properties/note: property removed or renamed"]


def test_renamed_property_is_breaking():
    def edit(s):
        s["properties"]["comment"] = s["properties"].pop("note")
    assert changed(edit) == ["event.json: /properties/note: property removed or renamed"]


def test_new_required_property_is_breaking():
    def edit(s):
        s["properties"]["extra"] = {"type": "string"}
        s["required"].append("extra")
    [problem] = changed(edit)
    assert problem.startswith("event.json: /required: 'extra' became required")


def test_required_may_not_shrink_either():
    [problem] = changed(lambda s: s["required"].remove("tier"))
    assert problem.startswith("event.json: /required: 'tier' is no longer required")


def test_type_narrowed_is_breaking():
    [problem] = changed(lambda s: s["properties"]["note"].update(type="string"))
    assert problem.startswith("event.json: /properties/note/type:")
    assert "narrowed, null no longer allowed" in problem


def test_type_widened_is_breaking():
    [problem] = changed(lambda s: s["properties"]["score"].update(type=["number", "null"]))
    assert "/properties/score/type" in problem and "widened, null now allowed" in problem


def test_integer_to_number_only_widens():
    old = {"type": "integer"}
    [problem] = breaking_changes(old, {"type": "number"})
    assert "widened, number now allowed" in problem and "narrowed" not in problem


def test_enum_shrunk_is_breaking():
    [problem] = changed(lambda s: s["properties"]["tier"]["enum"].remove("poor"))
    assert problem == ('event.json: /properties/tier/enum: value "poor" removed (events '
                       "already on the topic carry it)")


def test_enum_grown_is_breaking_because_enums_are_closed():
    [problem] = changed(lambda s: s["properties"]["tier"]["enum"].append("fair"))
    assert problem.startswith('event.json: /properties/tier/enum: value "fair" added')


def test_enum_reordered_is_fine():
    assert changed(lambda s: s["properties"]["tier"]["enum"].reverse()) == []


def test_pattern_changed_is_breaking():
    [problem] = changed(lambda s: s["properties"]["id"].update(pattern="^[0-9a-f]{64}$"))
    assert problem.startswith("event.json: /properties/id/pattern: pattern changed")


@pytest.mark.parametrize(("edit", "direction"), [
    (lambda p: p.update(maximum=50), "tightened"),
    (lambda p: p.update(minimum=10), "tightened"),
    (lambda p: p.pop("maximum"), "loosened"),
    (lambda p: p.update(maximum=1000), "loosened"),
    (lambda p: p.update(exclusiveMaximum=100), "tightened"),
])
def test_bounds_are_frozen_in_both_directions(edit, direction):
    [problem] = changed(lambda s: edit(s["properties"]["score"]))
    assert problem.startswith("event.json: /properties/score/") and direction in problem


def test_closing_an_open_object_is_breaking():
    [problem] = changed(lambda s: s.update(additionalProperties=False))
    assert problem.startswith("event.json: /additionalProperties:")


def test_nested_items_are_compared():
    [problem] = changed(lambda s: s["properties"]["tags"]["items"].update(type="integer"))
    assert problem.startswith("event.json: /properties/tags/items/type:")


def test_anyof_losing_a_branch_is_breaking():
    old = {"properties": {"after": {"anyOf": [{"type": "object"}, {"type": "null"}]}}}
    new = {"properties": {"after": {"anyOf": [{"type": "object"}]}}}
    assert breaking_changes(old, new) == ["/properties/after/anyOf: 2 subschemas -> 1"]


COMMON = {"$defs": {"tier": {"type": "string", "enum": ["excellent", "good", "poor"]}}}


def test_refs_are_followed_into_other_documents():
    event = {"properties": {"tier": {"$ref": "common.json#/$defs/tier"}}}
    grown = copy.deepcopy(COMMON)
    grown["$defs"]["tier"]["enum"].append("fair")
    problems = breaking_changes(event, event, old_documents={"common.json": COMMON},
                                new_documents={"common.json": grown}, name="event.json")
    assert problems == ['event.json: /properties/tier/enum: value "fair" added (enums are '
                        "closed sets: consumers of the released schema reject it)"]


def test_inlining_a_ref_with_the_same_content_is_fine():
    old = {"properties": {"tier": {"$ref": "common.json#/$defs/tier"}}}
    new = {"properties": {"tier": {"description": "inlined", **COMMON["$defs"]["tier"]}}}
    assert breaking_changes(old, new, old_documents={"common.json": COMMON}) == []


def test_removed_definition_is_breaking():
    problems = release_breaking_changes({"common.json": COMMON}, {"common.json": {"$defs": {}}})
    assert problems == ["common.json: /$defs/tier: definition removed (other schemas may "
                        "$ref it)"]


def test_unresolvable_ref_is_reported():
    event = {"properties": {"tier": {"$ref": "common.json#/$defs/tier"}}}
    [problem] = breaking_changes(event, event, old_documents={"common.json": COMMON},
                                 new_documents={"common.json": {"$defs": {}}})
    assert problem.startswith("/properties/tier: new schema: ")


def test_removed_schema_and_new_schema():
    released = {"a.json": EVENT}
    assert release_breaking_changes(released, {}) == ["a.json: schema removed"]
    assert release_breaking_changes(released, {"a.json": EVENT, "b.json": {}}) == []
