"""Quick start (a) as a newcomer runs it: `imgstream demo` on the embedded stack.

Checks what the issues promise: the sample batch is uploaded, every sample has one row in
MySQL, one ImageUploaded and one QualityAssessed event readable with kcat, the demo shows
each sample's tier, and Ctrl-C leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import schemas
from infra.namespace import namespace_env, namespaced
from tests.conftest import ROOT, _drop_namespace, run_query
from tests.integration.test_stack import _processes_mentioning

pytestmark = pytest.mark.e2e

DEMO_PORT = 16266


@pytest.fixture()
def demo_env(stack):
    _, settings = stack
    env = {**os.environ, **namespace_env("e2e", uuid.uuid4().hex[:8]),
           "IMGSTREAM_API_KEYS": "", "IMGSTREAM_ADMIN_KEYS": "",
           "IMGSTREAM_WEB_PORT": str(DEMO_PORT)}
    yield env
    asyncio.run(_drop_namespace(namespaced(settings, env)))


def _kcat_events(bootstrap: str, topic: str) -> list[dict]:
    kcat = ROOT / "scripts" / "kcat"
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (scripts/setup installs it as root)")
    out = subprocess.run(
        [str(kcat), "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
         "-f", "%s\n"], capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_demo_uploads_the_samples_and_stops_cleanly_on_ctrl_c(demo_env, stack, db_query):
    _, settings = stack
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "demo"], cwd=ROOT, env=demo_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output: list[str] = []
    deadline = time.monotonic() + 240
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "Serving." in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Serving." in text, text
        assert f"Dashboard:        http://127.0.0.1:{DEMO_PORT}/dashboard" in text, text
        assert "12 files: 12 created" in text, text
        assert "excellent" in text and "poor" in text and "->" in text, text

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0, text + rest
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert _processes_mentioning(f"--web-port {DEMO_PORT}") == []

    recorded = run_query(namespaced(settings, demo_env),
                         "SELECT image_id, status FROM product_images")
    assert len(recorded) == 12
    assert {r["status"] for r in recorded} <= {"completed", "skipped"}

    prefix = demo_env["IMGSTREAM_TOPIC_PREFIX"]
    for topic, schema in (("images.uploaded", "image_uploaded"),
                          ("images.assessed", "quality_assessed"),
                          ("images.completed", "image_completed")):
        events = _kcat_events(settings.kafka_bootstrap, prefix + topic)
        assert sorted(e["image_id"] for e in events) == sorted(r["image_id"] for r in recorded)
        for event in events:
            schemas.validate_event(schema, event)
        if topic == "images.assessed":
            assert {"excellent", "poor"} <= {e["tier"] for e in events}
    assert Path(settings.home / "samples").is_dir()
