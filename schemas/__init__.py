"""Contracts: JSON Schemas of every event (``events/v<major>/``) and SQL migrations (``sql/``).

``validate_event`` is what producers call before emitting and consumers call after
decoding; a violation is a :class:`~imaging.errors.SchemaViolation` naming the field.
Valid documents - nearly all of them - are recognised by jsonschema-rs (compiled, tens of
times faster: a large event costs microseconds instead of a millisecond on every emit);
the reference ``jsonschema`` validator then only runs to name what is wrong, and has the
last word, so both agreeing on valid documents is all the fast path relies on.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from imaging.errors import SchemaViolation

MAJOR_VERSION = 1
_BASE_URI = f"https://imgstream.dev/schemas/events/v{MAJOR_VERSION}/"


def _folder():
    return resources.files("schemas") / "events" / f"v{MAJOR_VERSION}"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema document ``events/v1/<name>.json``."""
    path = _folder() / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no schema named {name!r}")
    return json.loads(path.read_text(encoding="utf-8"))


def schema_names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in _folder().iterdir()
                  if p.name.endswith(".json") and p.name != "common.json")


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(load_schema("common"))
    return Registry().with_resource(_BASE_URI + "common.json", resource)


@cache
def validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


@cache
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """The compiled validator of ``name``; formats are annotations, as for ``validator``."""
    registry = jsonschema_rs.Registry([(_BASE_URI + "common.json", load_schema("common"))])
    return jsonschema_rs.validator_for(load_schema(name), registry=registry,
                                       validate_formats=False, offline=True)


def validate_event(name: str, document: Any) -> None:
    """Raise SchemaViolation with the first offending field if ``document`` is invalid."""
    if fast_validator(name).is_valid(document):
        return
    error = next(iter(validator(name).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise SchemaViolation(f"{name} v{MAJOR_VERSION}: {where}: {error.message}")
