"""Check answers of the worker against ``schemas/openapi.json`` (tests only)."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from streams.api.openapi import openapi_document

_DOCUMENT = openapi_document()
_REGISTRY = Registry().with_resource("urn:openapi",
                                     Resource(contents=_DOCUMENT, specification=DRAFT202012))


def _template_of(path: str) -> str:
    for template in _DOCUMENT["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{path} is not in schemas/openapi.json")


def check_response(method: str, path: str, status: int, body: Any) -> None:
    """``body`` (JSON) is what the document says ``method path`` answers with ``status``."""
    operation = _DOCUMENT["paths"][_template_of(path.split("?")[0])].get(method.lower())
    assert operation is not None, f"{method} {path} is not in schemas/openapi.json"
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path}: status {status} is not documented"
    schema = response["content"]["application/json"]["schema"]
    ref = schema["$ref"].replace("#/", "urn:openapi#/")
    validator = Draft202012Validator({"$ref": ref}, registry=_REGISTRY)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


def documented_routes() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in _DOCUMENT["paths"].items()
            for method in item}
