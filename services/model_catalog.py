"""The model catalog (``services/data/models.toml``): operation, request family, price,
limits and lifecycle per Bedrock model id.

Routing reads prices from here to estimate plan costs, and refuses at start a profile
that names an unknown or retired model - a clear message instead of a 404 at run time.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from imaging.errors import ConfigurationError

LIFECYCLES = ("active", "legacy", "retired")


@dataclass(frozen=True)
class ModelEntry:
    id: str
    operation: str
    family: str
    price_usd: float
    lifecycle: str
    end_of_life: str | None = None
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def callable(self) -> bool:
        return self.callable_on(date.today())

    def callable_on(self, day: date) -> bool:
        """Retired models never; legacy ones until their end of life (the date itself is out)."""
        if self.lifecycle == "retired":
            return False
        return self.end_of_life is None or day < date.fromisoformat(self.end_of_life)


@dataclass(frozen=True)
class ModelCatalog:
    models: dict[str, ModelEntry]

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self.models[model_id]
        except KeyError:
            raise ConfigurationError(f"model {model_id!r} is not in the model catalog") from None

    def require_callable(self, model_id: str, operation: str, where: str) -> ModelEntry:
        """The entry for a model a profile routes to; ConfigurationError if unusable."""
        entry = self.get(model_id)
        if not entry.callable:
            state = "retired" if entry.lifecycle == "retired" else "past its end of life"
            raise ConfigurationError(
                f"{where}: model {model_id} is {state}"
                f"{f' since {entry.end_of_life}' if entry.end_of_life else ''}; "
                "choose an active model from services/data/models.toml")
        if entry.operation != operation:
            raise ConfigurationError(f"{where}: model {model_id} does {entry.operation!r}, "
                                     f"not {operation!r}")
        return entry


def parse_catalog(data: dict[str, Any], source: str) -> ModelCatalog:
    models: dict[str, ModelEntry] = {}
    for index, raw in enumerate(data.get("models", [])):
        where = f"{source}: models[{index}]"
        try:
            entry = ModelEntry(
                id=str(raw["id"]), operation=str(raw["operation"]), family=str(raw["family"]),
                price_usd=float(raw["price_usd"]), lifecycle=str(raw["lifecycle"]),
                end_of_life=(str(raw["end_of_life"]) if raw.get("end_of_life") is not None
                             else None), limits=dict(raw.get("limits", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: missing or invalid field {exc}") from None
        if entry.lifecycle not in LIFECYCLES:
            raise ConfigurationError(f"{where}: lifecycle must be one of {LIFECYCLES}")
        if entry.end_of_life is not None:
            try:
                date.fromisoformat(entry.end_of_life)
            except ValueError:
                raise ConfigurationError(f"{where}: end_of_life must be YYYY-MM-DD") from None
        elif entry.lifecycle == "retired":
            raise ConfigurationError(f"{where}: a retired model needs its end_of_life date")
        if entry.price_usd < 0:
            raise ConfigurationError(f"{where}: price_usd must be >= 0")
        if entry.id in models:
            raise ConfigurationError(f"{where}: duplicate id {entry.id}")
        models[entry.id] = entry
    return ModelCatalog(models)


@cache
def load_catalog(path: Path | None = None) -> ModelCatalog:
    source = path or (resources.files("services") / "data" / "models.toml")
    return parse_catalog(tomllib.loads(source.read_text(encoding="utf-8")), str(source))
