"""Settings parsing that the worker acts on at start."""

import pytest
from pydantic import ValidationError

from streams.settings import Settings, parse_cpu_set


@pytest.mark.parametrize("text, cpus", [
    ("", set()), ("0", {0}), ("1", {1}), ("0-2", {0, 1, 2}), ("0-1, 4", {0, 1, 4}),
])
def test_cpu_sets(text, cpus):
    assert parse_cpu_set(text) == cpus
    assert Settings(cpu_set=text).cpus == cpus


@pytest.mark.parametrize("text", ["a", "2-1", "1-", "-1", "0;1"])
def test_a_bad_cpu_set_stops_the_worker_with_its_text(text):
    with pytest.raises(ValidationError, match="not a CPU list"):
        Settings(cpu_set=text)


def test_the_fetch_wait_comes_from_the_environment_within_faust_bounds(monkeypatch):
    monkeypatch.setenv("IMGSTREAM_FETCH_MAX_WAIT_MS", "300")
    assert Settings().fetch_max_wait_ms == 300
    for bad in (0, 5000):  # no busy polling; not longer than faust's own 1.5 s
        with pytest.raises(ValidationError):
            Settings(fetch_max_wait_ms=bad)
