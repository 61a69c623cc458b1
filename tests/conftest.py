"""Session fixtures for integration and e2e tests: the real embedded stack, a real worker.

Every test session works in its own namespace (topic prefix, consumer group, database,
buckets) so it neither sees nor disturbs a demo running on the same stack. The stack is
reused when it already runs and otherwise started here and stopped at the end; the
namespace is removed at the end either way.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from infra.namespace import namespace_env

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]
TEST_WEB_PORT = int(os.environ.get("IMGSTREAM_TEST_WEB_PORT", "16166"))
API_KEY = "test-key-1"
ADMIN_KEY = "test-admin-1"

NAMESPACE_ENV = {
    "IMGSTREAM_HOME": os.environ.get("IMGSTREAM_HOME", str(ROOT / ".imgstream")),
    **namespace_env("test", RUN_ID),
    "IMGSTREAM_API_KEYS": f"{API_KEY},test-key-2",
    "IMGSTREAM_ADMIN_KEYS": ADMIN_KEY,
    "IMGSTREAM_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
}

# Facts measured by the fixtures, printed at the end of the session for the issue note.
MEASURED: dict[str, str] = {}


def _backend():
    from tests.backends import choose_backend, docker_engine_available, testcontainers_installed

    requested = os.environ.get("IMGSTREAM_TEST_BACKEND")
    wants_check = (requested or "embedded").strip().lower() != "embedded"
    return choose_backend(requested, wants_check and docker_engine_available(),
                          wants_check and testcontainers_installed())


def pytest_report_header(config):
    backend = _backend()
    return f"imgstream test backend: {backend.name} ({backend.reason})"


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("measured")
        for key, value in MEASURED.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def backend_env():
    """IMGSTREAM_* endpoints of the selected backend (tests/backends.py); none when the
    embedded stack is used."""
    from contextlib import ExitStack

    from tests.backends import start_containers

    backend = _backend()
    MEASURED["test backend"] = f"{backend.name} ({backend.reason})"
    with ExitStack() as containers:
        yield start_containers(containers) if backend.name == "containers" else {}


@pytest.fixture(scope="session")
def settings(backend_env):
    """Settings of this session's namespace (also exported to child processes)."""
    from streams.settings import Settings

    os.environ.update(NAMESPACE_ENV)
    os.environ.update(backend_env)
    from streams.settings import reload_settings

    reload_settings()
    return Settings()


@pytest.fixture(scope="session")
def stack(settings):
    from infra.stack import Stack
    from streams.settings import Settings

    stack = Stack(settings)
    # Only the parts this session starts are stopped at its end: a stack someone else
    # runs (a demo, another engineer's tests) keeps running.
    missing = [p.name for p in stack.status() if p.state not in ("running", "external")]
    if missing:
        started = time.monotonic()
        stack.up(echo=lambda line: None)
        MEASURED["stack up (missing parts)"] = (f"{', '.join(missing)} in "
                                                f"{time.monotonic() - started:.2f}s")
    fresh = Settings()  # stack up may have chosen a private database port
    yield stack, fresh
    asyncio.run(_drop_namespace(fresh))
    if missing:  # a private database runs as the stack's "mariadb" process
        stack.down(echo=lambda line: None,
                   only=[*missing, *(["mariadb"] if "database" in missing else [])])


async def _drop_namespace(settings) -> None:
    from infra.namespace import drop_namespace

    for problem in await drop_namespace(settings):
        print(f"cleanup: {problem}")


@pytest.fixture(scope="session")
def worker(stack):
    from infra.workers import start_worker

    _, settings = stack
    process = start_worker(TEST_WEB_PORT, settings.logs_dir / f"worker-test-{RUN_ID}.log")
    try:
        healthy = process.wait_ready(timeout=120)
        ready = process.wait_log("[^Worker]: Ready", timeout=120)
        MEASURED["worker start-up: API healthy / agents ready"] = f"{healthy:.1f}s / {ready:.1f}s"
        time.sleep(2)
        rss = process.rss_mb()
        if rss:
            MEASURED["worker idle RSS"] = f"{rss:.0f} MB"
        yield process
    finally:
        process.stop()


def run_query(settings, sql: str, args=None) -> list[dict]:
    """One query against ``settings``' database (fresh pool per call)."""
    from services.database import Database

    async def run():
        db = await Database.connect(settings, create=False)
        try:
            return await db.fetchall(sql, args)
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture()
def db_query(stack):
    """Run one query against the namespace database."""
    _, settings = stack
    return lambda sql, args=None: run_query(settings, sql, args)


@pytest.fixture()
def topic_reader(stack):
    from tests.integration.kafka_reader import read_topic

    _, settings = stack
    return lambda short, **kw: read_topic(settings, short, **kw)
