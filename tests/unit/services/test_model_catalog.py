"""The model catalog: lifecycles by date, and profiles routing to unusable models."""

from datetime import date

import pytest

from imaging.errors import ConfigurationError
from services.model_catalog import load_catalog, parse_catalog

CATALOG = load_catalog()


def _entry(**fields):
    raw = {"id": "m", "operation": "upscale", "family": "stability-image-edit",
           "price_usd": 0.03, "lifecycle": "active", **fields}
    return parse_catalog({"models": [raw]}, "test").get("m")


def test_nova_canvas_and_titan_v2_are_kept_as_retired():
    for model in ("amazon.nova-canvas-v1:0", "amazon.titan-image-generator-v2:0"):
        entry = CATALOG.get(model)
        assert entry.lifecycle == "retired" and not entry.callable and entry.end_of_life


def test_every_routed_default_model_is_active_and_priced():
    for model, operation, price in (
            ("stability.stable-image-remove-background-v1:0", "background", 0.07),
            ("stability.stable-fast-upscale-v1:0", "upscale", 0.03)):
        entry = CATALOG.require_callable(model, operation, "test")
        assert entry.price_usd == price and entry.lifecycle == "active"


def test_a_legacy_model_stops_being_callable_on_its_end_of_life():
    entry = _entry(lifecycle="legacy", end_of_life="2026-12-01")
    assert entry.callable_on(date(2026, 11, 30))
    assert not entry.callable_on(date(2026, 12, 1))


def test_retired_model_fails_with_a_clear_message():
    with pytest.raises(ConfigurationError, match=r"amazon\.nova-canvas-v1:0 is retired since"):
        CATALOG.require_callable("amazon.nova-canvas-v1:0", "lighting", "profile x")
    with pytest.raises(ConfigurationError, match="not in the model catalog"):
        CATALOG.require_callable("stability.nope-v9", "upscale", "profile x")
    with pytest.raises(ConfigurationError, match="does 'upscale', not 'background'"):
        CATALOG.require_callable("stability.stable-fast-upscale-v1:0", "background", "p")


@pytest.mark.parametrize("fields, message", [
    ({"lifecycle": "retired"}, "needs its end_of_life"),
    ({"end_of_life": "soon"}, "YYYY-MM-DD"),
    ({"lifecycle": "beta"}, "lifecycle must be one of"),
    ({"price_usd": -1}, "price_usd must be >= 0"),
])
def test_malformed_entries_are_refused(fields, message):
    with pytest.raises(ConfigurationError, match=message):
        _entry(**fields)
