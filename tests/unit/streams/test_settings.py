"""Settings parsing that the worker acts on at start."""

import os

import pytest
from pydantic import ValidationError

from streams.settings import EMBEDDED_DEFAULTS, PRODUCTION_REQUIRED, Settings, parse_cpu_set


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


def _clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("IMGSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IMGSTREAM_HOME", str(tmp_path))  # no stack.env from a real stack


def test_embedded_defaults_point_at_the_loopback_stack(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    settings = Settings()
    assert settings.env == "embedded"
    assert settings.bedrock_endpoint == EMBEDDED_DEFAULTS["bedrock_endpoint"]
    assert settings.s3_access_key == "imgstream"
    assert settings.production_problems() == []
    monkeypatch.setenv("IMGSTREAM_BEDROCK_ENDPOINT", "")  # explicitly real Bedrock
    assert Settings().bedrock_endpoint is None


def test_production_defaults_nothing_to_loopback_or_static_keys(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("IMGSTREAM_ENV", "production")
    settings = Settings()
    for name in ("s3_endpoint", "cloudfront_endpoint", "bedrock_endpoint",
                 "s3_access_key", "s3_secret_key"):
        assert getattr(settings, name) is None, name
    problems = settings.production_problems()
    assert [p.split(":")[0] for p in problems] == [
        f"IMGSTREAM_{name.upper()}" for name in PRODUCTION_REQUIRED]


def test_production_refuses_an_empty_key_list_or_distribution(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("IMGSTREAM_ENV", "production")
    for name in PRODUCTION_REQUIRED:
        monkeypatch.setenv(f"IMGSTREAM_{name.upper()}", "x:1" if name == "kafka_bootstrap"
                           else "value")
    assert Settings().production_problems() == []
    monkeypatch.setenv("IMGSTREAM_API_KEYS", " , ")
    monkeypatch.setenv("IMGSTREAM_CLOUDFRONT_DISTRIBUTION_ID", "")
    problems = " ".join(Settings().production_problems())
    assert "IMGSTREAM_API_KEYS" in problems and "IMGSTREAM_CLOUDFRONT_DISTRIBUTION_ID" in problems
