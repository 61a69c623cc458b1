"""Is a schema change breaking? Pure comparison of two JSON Schema versions of an event.

Events stay on their topics for 30 days (images.uploaded forever) and are replayed, so
within one major version both directions must keep working: a consumer built on the
released schema validates events written with the new one, and a consumer built on the
new schema reads events written before it. Hence (schemas/VERSIONING.md):

* properties are never removed or renamed; new ones are optional (not in ``required``);
* ``required``, ``type``, ``enum``/``const`` (closed sets: tier, status...), ``pattern``,
  ``format``, bounds (minimum, maxLength...) and ``additionalProperties`` of an existing
  schema do not change, in either direction;
* annotations (description, title, examples, ``$comment``, default...) change freely.

``breaking_changes`` walks both versions side by side, resolving ``$ref`` within a set of
documents (``common.json`` and the event files), and names the JSON path of each problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

#: Keywords that document and never constrain: changing them is never breaking.
ANNOTATIONS = frozenset({
    "description", "title", "examples", "$comment", "default", "deprecated", "readOnly",
    "writeOnly", "$schema",
})
_LOWER_BOUNDS = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems",
                           "minProperties", "minContains"})
_UPPER_BOUNDS = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems",
                           "maxProperties", "maxContains"})
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "contains", "not", "propertyNames")
_HANDLED = frozenset({"$ref", "$defs", "properties", "required", "type", "enum", "const",
                      *_SUBSCHEMA_LISTS, *_SUBSCHEMAS})

Schema = Mapping[str, Any] | bool


@dataclass
class _Side:
    """One version: its documents by file name, for ``$ref`` resolution."""

    documents: Mapping[str, Mapping[str, Any]]

    def resolve(self, ref: str, base: str) -> tuple[str, Schema]:
        """(document name, target) of ``ref`` written in document ``base``."""
        address, _, pointer = ref.partition("#")
        name = address.rsplit("/", 1)[-1] or base
        if name not in self.documents:
            raise KeyError(f"$ref {ref!r}: no document {name!r}")
        node: Any = self.documents[name]
        for part in filter(None, pointer.split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(f"$ref {ref!r}: nothing at {pointer!r} in {name}")
            node = node[part]
        return name, node


@dataclass
class _Walk:
    old: _Side
    new: _Side
    problems: list[str] = field(default_factory=list)
    # (old target, new target) pairs being compared: stops recursive schemas.
    active: set[tuple[int, int]] = field(default_factory=set)

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '/'}: {message}")

    def deref(self, side: _Side, schema: Schema, base: str, path: str
              ) -> tuple[str, Schema, int] | None:
        """(document, schema, identity) after following ``$ref`` chains.

        Sibling keywords of a ``$ref`` (descriptions) are merged over its target; the
        identity is the last target's, which stays the same however it is reached.
        """
        identity, seen = id(schema), set()
        while isinstance(schema, Mapping) and "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            try:
                base, target = side.resolve(schema["$ref"], base)
            except KeyError as exc:
                self.report(path, f"{'old' if side is self.old else 'new'} schema: {exc}")
                return None
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            identity = id(target)
            schema = {**target, **siblings} if siblings and isinstance(target, Mapping) \
                else target
        return base, schema, identity

    def compare(self, old: Schema, new: Schema, path: str, old_base: str,
                new_base: str) -> None:
        old_resolved = self.deref(self.old, old, old_base, path)
        new_resolved = self.deref(self.new, new, new_base, path)
        if old_resolved is None or new_resolved is None:
            return
        (old_base, old, old_id), (new_base, new, new_id) = old_resolved, new_resolved
        if isinstance(old, bool) or isinstance(new, bool):
            if not (_is_open(old) and _is_open(new)) and not (old is False and new is False):
                self.report(path, f"schema {_show(old)} -> {_show(new)}")
            return
        if (old_id, new_id) in self.active:
            return
        self.active.add((old_id, new_id))
        try:
            self._compare_objects(old, new, path, old_base, new_base)
        finally:
            self.active.discard((old_id, new_id))

    def _compare_objects(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str,
                         old_base: str, new_base: str) -> None:
        self._types(old.get("type", _MISSING), new.get("type", _MISSING), path)
        self._closed_sets(old, new, path)
        self._required(old.get("required", []), new.get("required", []), path)
        self._properties(old, new, path, old_base, new_base)
        for name in _SUBSCHEMAS:
            self._subschema(old, new, name, path, old_base, new_base)
        for name in _SUBSCHEMA_LISTS:
            self._subschema_list(old.get(name), new.get(name), f"{path}/{name}",
                                 old_base, new_base)
        for name, definition in old.get("$defs", {}).items():
            where = f"{path}/$defs/{name}"
            if name not in new.get("$defs", {}):
                self.report(where, "definition removed (other schemas may $ref it)")
            else:
                self.compare(definition, new["$defs"][name], where, old_base, new_base)
        self._constraints(old, new, path)

    def _types(self, old: Any, new: Any, path: str) -> None:
        if old is _MISSING and new is _MISSING:
            return
        if old is _MISSING or new is _MISSING:
            change = "narrowed from any type" if old is _MISSING else "widened to any type"
            self.report(f"{path}/type", f"type {_show(old)} -> {_show(new)}: {change}")
            return
        before, after = _as_set(old), _as_set(new)
        if before == after:
            return
        # "number" includes the integers: integer -> number only widens.
        lost = sorted(t for t in before - after if not (t == "integer" and "number" in after))
        gained = sorted(t for t in after - before if not (t == "integer" and "number" in before))
        parts = []
        if lost:
            parts.append(f"narrowed, {', '.join(lost)} no longer allowed (events already on "
                         "the topic fail the new schema)")
        if gained:
            parts.append(f"widened, {', '.join(gained)} now allowed (consumers of the "
                         "released schema reject it)")
        self.report(f"{path}/type", f"type {_show(old)} -> {_show(new)}: {'; '.join(parts)}")

    def _closed_sets(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        before, after = old.get("const", _MISSING), new.get("const", _MISSING)
        if before != after:
            self.report(f"{path}/const", f"const {_show(before)} -> {_show(after)}")
        if "enum" not in old and "enum" not in new:
            return
        if "enum" not in old or "enum" not in new:
            self.report(f"{path}/enum", "enum " + ("added (the value set was open)"
                                                   if "enum" in new else "removed"))
            return
        before, after = old["enum"], new["enum"]
        for value in before:
            if value not in after:
                self.report(f"{path}/enum", f"value {_show(value)} removed (events already "
                                            "on the topic carry it)")
        for value in after:
            if value not in before:
                self.report(f"{path}/enum", f"value {_show(value)} added (enums are closed "
                                            "sets: consumers of the released schema reject it)")

    def _required(self, old: list[str], new: list[str], path: str) -> None:
        for name in sorted(set(new) - set(old)):
            self.report(f"{path}/required", f"{name!r} became required (events already on "
                                            "the topic may lack it)")
        for name in sorted(set(old) - set(new)):
            self.report(f"{path}/required", f"{name!r} is no longer required (consumers of "
                                            "the released schema rely on it)")

    def _properties(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str,
                    old_base: str, new_base: str) -> None:
        new_properties = new.get("properties", {})
        for name, schema in old.get("properties", {}).items():
            where = f"{path}/properties/{name}"
            if name not in new_properties:
                self.report(where, "property removed or renamed")
            else:
                self.compare(schema, new_properties[name], where, old_base, new_base)

    def _subschema(self, old: Mapping[str, Any], new: Mapping[str, Any], name: str,
                   path: str, old_base: str, new_base: str) -> None:
        if name not in old and name not in new:
            return
        where = f"{path}/{name}"
        if name == "additionalProperties":
            before, after = old.get(name, True), new.get(name, True)
        elif name not in old or name not in new:
            self.report(where, f"{name} {'added' if name in new else 'removed'}")
            return
        else:
            before, after = old[name], new[name]
        self.compare(before, after, where, old_base, new_base)

    def _subschema_list(self, old: Any, new: Any, path: str, old_base: str,
                        new_base: str) -> None:
        if old is None and new is None:
            return
        if old is None or new is None or len(old) != len(new):
            self.report(path, f"{len(old or [])} subschemas -> {len(new or [])}")
            return
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            self.compare(before, after, f"{path}/{index}", old_base, new_base)

    def _constraints(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for name in sorted((set(old) | set(new)) - ANNOTATIONS - _HANDLED):
            before, after = old.get(name, _MISSING), new.get(name, _MISSING)
            if before == after:
                continue
            where = f"{path}/{name}"
            if name in _LOWER_BOUNDS | _UPPER_BOUNDS:
                tighter = _tightened(name, before, after)
                self.report(where, f"{name} {_show(before)} -> {_show(after)}: " + (
                    "tightened (events already on the topic may fail the new schema)" if tighter
                    else "loosened (consumers of the released schema reject the new values)"))
            else:
                self.report(where, f"{name} changed: {_show(before)} -> {_show(after)}")


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


_MISSING = _Missing()


def _is_open(schema: Schema) -> bool:
    """True, {} and annotation-only schemas accept anything."""
    return schema is True or (isinstance(schema, Mapping) and not set(schema) - ANNOTATIONS)


def _as_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, _Missing) else json.dumps(value)


def _tightened(name: str, before: Any, after: Any) -> bool:
    if isinstance(before, _Missing):
        return True
    if isinstance(after, _Missing):
        return False
    return after > before if name in _LOWER_BOUNDS else after < before


def breaking_changes(old_schema: Schema, new_schema: Schema, *,
                     old_documents: Mapping[str, Mapping[str, Any]] | None = None,
                     new_documents: Mapping[str, Mapping[str, Any]] | None = None,
                     name: str = "") -> list[str]:
    """Why ``new_schema`` is not a compatible minor version of ``old_schema``; [] if it is.

    ``*_documents`` map file names (``common.json``) to the documents ``$ref`` may point
    to; ``name`` is the file name of the schema itself (for ``#/...`` references and the
    messages). Each message is ``<name>: <JSON path in the schema>: <what changed>``.
    """
    documents_old = {**(old_documents or {}), name: old_schema}
    documents_new = {**(new_documents or {}), name: new_schema}
    walk = _Walk(_Side(documents_old), _Side(documents_new))
    walk.compare(old_schema, new_schema, "", name, name)
    prefix = f"{name}: " if name else ""
    return [prefix + problem for problem in walk.problems]


def release_breaking_changes(released: Mapping[str, Mapping[str, Any]],
                             current: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every document of a release (by file name) against its current version."""
    problems = []
    for name, old in sorted(released.items()):
        if name not in current:
            problems.append(f"{name}: schema removed")
            continue
        problems += breaking_changes(old, current[name], old_documents=released,
                                     new_documents=current, name=name)
    return problems


def load_documents(folder: Traversable) -> dict[str, dict[str, Any]]:
    """The ``*.json`` documents of a folder, by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in folder.iterdir() if p.name.endswith(".json")}


def released_versions() -> list[str]:
    """Frozen releases under ``schemas/released/`` (``1.0``, ``1.1``...), oldest first."""
    folder = resources.files("schemas") / "released"
    names = [p.name for p in folder.iterdir() if p.is_dir() and p.name[:1].isdigit()]
    return sorted(names, key=lambda v: tuple(int(n) for n in v.split(".")))


def released_documents(version: str) -> dict[str, dict[str, Any]]:
    return load_documents(resources.files("schemas") / "released" / version)


def current_documents(major: int) -> dict[str, dict[str, Any]]:
    return load_documents(resources.files("schemas") / "events" / f"v{major}")
