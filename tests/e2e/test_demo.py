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
from tests.conftest import ROOT, _drop_namespace
from tests.integration.test_stack import _processes_mentioning

pytestmark = pytest.mark.e2e

DEMO_PORT = 16266


@pytest.fixture()
def demo_env(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "IMGSTREAM_TOPIC_PREFIX": f"e2e-{run}.",
        "IMGSTREAM_APP_ID": f"imgstream-e2e-{run}",
        "IMGSTREAM_DB_NAME": f"imgstream_e2e_{run}",
        "IMGSTREAM_ORIGINALS_BUCKET": f"imgstream-e2e-{run}-originals",
        "IMGSTREAM_ENHANCED_BUCKET": f"imgstream-e2e-{run}-enhanced",
        "IMGSTREAM_API_KEYS": "",
        "IMGSTREAM_WEB_PORT": str(DEMO_PORT),
    }
    yield env
    scoped = settings.model_copy(update={
        "topic_prefix": env["IMGSTREAM_TOPIC_PREFIX"], "app_id": env["IMGSTREAM_APP_ID"],
        "db_name": env["IMGSTREAM_DB_NAME"],
        "originals_bucket": env["IMGSTREAM_ORIGINALS_BUCKET"],
        "enhanced_bucket": env["IMGSTREAM_ENHANCED_BUCKET"]})
    asyncio.run(_drop_namespace(scoped))


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

    from services.database import Database

    async def rows():
        db = await Database.connect(settings.model_copy(
            update={"db_name": demo_env["IMGSTREAM_DB_NAME"]}), create=False)
        try:
            return await db.fetchall("SELECT image_id, status FROM product_images")
        finally:
            await db.close()

    recorded = asyncio.run(rows())
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
