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
