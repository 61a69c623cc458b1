"""`stack up|down|status` on a second, private stack (own home and ports)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from infra.stack import Stack
from streams.settings import Settings

pytestmark = pytest.mark.integration


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture()
def private_stack(tmp_path, stack):
    settings = Settings(
        home=tmp_path / "home",
        kafka_bootstrap="127.0.0.1:19192",
        s3_endpoint="http://127.0.0.1:18433",
        cloudfront_endpoint="http://127.0.0.1:15101",
    )
    private = Stack(settings)
    yield private
    private.down(echo=lambda _: None)


def test_up_is_idempotent_recovers_from_a_crash_and_down_leaves_nothing(private_stack):
    lines: list[str] = []
    started = time.monotonic()
    first = {s.name: s for s in private_stack.up(echo=lines.append)}
    cold = time.monotonic() - started
    assert {first[n].state for n in ("broker", "s3", "cloudfront")} == {"running"}
    assert first["database"].state in ("external", "running")

    again = {s.name: s for s in private_stack.up(echo=lines.append)}
    assert again["broker"].pid == first["broker"].pid
    assert any("already running" in line for line in lines)

    os.kill(first["broker"].pid, signal.SIGKILL)  # a crash: the pid file stays behind
    time.sleep(0.3)
    assert {s.name: s for s in private_stack.status()}["broker"].state == "stopped"
    recovered = {s.name: s for s in private_stack.up(echo=lines.append)}
    assert recovered["broker"].state == "running"
    assert recovered["broker"].pid != first["broker"].pid

    assert (private_stack.logs_dir / "broker.log").exists()
    home = str(private_stack.home)
    assert _processes_mentioning(home)  # weed runs with -dir under the home
    private_stack.down(echo=lines.append)
    time.sleep(0.5)
    assert _processes_mentioning(home) == []
    assert _processes_mentioning("127.0.0.1:19192") == []
    assert _processes_mentioning("-p 15101") == []
    assert all(s.state in ("stopped", "external") for s in private_stack.status())
    print(f"private stack cold up: {cold:.2f}s")


def test_private_mariadb_when_no_database_answers(tmp_path, stack):
    import asyncio

    from services.database import Database

    settings = Settings(
        home=tmp_path / "home", kafka_bootstrap="127.0.0.1:19192",
        s3_endpoint="http://127.0.0.1:18433", cloudfront_endpoint="http://127.0.0.1:15101",
        db_port=1, private_db_port=13406,
    )
    private = Stack(settings)
    try:
        statuses = {s.name: s for s in private.up(echo=lambda _: None)}
        assert statuses["mariadb"].state == "running"
        assert "IMGSTREAM_DB_PORT=13406" in private.env_file.read_text()

        async def select_one():
            db = await Database.connect(settings.model_copy(update={"db_port": 13406}))
            try:
                return await db.fetchone("SELECT 1 AS ok")
            finally:
                await db.close()

        assert asyncio.run(select_one()) == {"ok": 1}
    finally:
        private.down(echo=lambda _: None)
    assert _processes_mentioning("--port=13406") == []
    assert not private.env_file.exists()
