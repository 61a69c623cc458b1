"""A malformed profile stops the worker at start with the field and the reason."""

from __future__ import annotations

from importlib import resources

import pytest

from infra.workers import start_worker
from tests.conftest import RUN_ID, TEST_WEB_PORT

pytestmark = pytest.mark.integration


def test_worker_refuses_a_malformed_profile(stack, tmp_path):
    _, settings = stack
    text = (resources.files("profiles") / "default.toml").read_text()
    broken = text.replace('name = "default"', 'name = "broken"').replace(
        "excellent = 80.0", "excellent = 50.0")
    (tmp_path / "broken.toml").write_text(broken)
    log = settings.logs_dir / f"worker-test-{RUN_ID}-badprofile.log"
    worker = start_worker(TEST_WEB_PORT + 2, log, env={
        "IMGSTREAM_PROFILE": "broken", "IMGSTREAM_PROFILES_DIR": str(tmp_path)})
    try:
        assert worker.process.wait(timeout=60) != 0
    finally:
        worker.stop()
    output = log.read_text()
    assert "profile broken.toml: tiers: needs 0 <= good <= excellent <= 100" in output


def test_worker_refuses_a_profile_routing_to_a_retired_model(stack, tmp_path):
    _, settings = stack
    text = (resources.files("profiles") / "default.toml").read_text()
    retired = text.replace('name = "default"', 'name = "old-models"').replace(
        'lighting = ""', 'lighting = "amazon.nova-canvas-v1:0"')
    assert retired != text
    (tmp_path / "old-models.toml").write_text(retired)
    log = settings.logs_dir / f"worker-test-{RUN_ID}-retired.log"
    worker = start_worker(TEST_WEB_PORT + 2, log, env={
        "IMGSTREAM_PROFILE": "old-models", "IMGSTREAM_PROFILES_DIR": str(tmp_path)})
    try:
        assert worker.process.wait(timeout=60) != 0
    finally:
        worker.stop()
    output = log.read_text()
    assert ("profile old-models: routing.models.lighting: model amazon.nova-canvas-v1:0 is "
            "retired since 2026-09-30") in output
