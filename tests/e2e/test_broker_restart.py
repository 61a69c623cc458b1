"""The broker restarts, empty, under a running worker with a batch in flight.

A private embedded broker (tansu, memory storage: a restart loses every topic, offset and
changelog), its own Bedrock emulator and one worker that keeps running throughout. Seller
photos and AI-eligible ones are uploaded over HTTP; once a few have completed the broker
is stopped, kept down a few seconds and started again empty. Required: /api/health says
the broker is down while it is, every photo completes exactly once and none fails, and
the money agrees: what the emulator billed == the day's settled spend == ai_usage_logs,
within the cap.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

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
from tests.e2e.test_broker_loss import Broker
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

BROKER_PORT = 19591
WORKER_PORT = 16591
EMULATOR_PORT = 16592
CAP = 0.12  # binds: the 6 AI-eligible photos would spend $0.18
DOWN_SECONDS = 5.0
SELLERS = Path(__file__).resolve().parents[3] / "shared" / "images" / "sellers"


def seller_photos(count: int) -> list[bytes]:
    """``count`` real seller photos, taken in turn from each category (sorted, stable)."""
    folders = sorted(p for p in SELLERS.iterdir() if p.is_dir())
    files = [sorted(f.glob("*.jpg")) for f in folders]
    chosen = [files[i % len(files)][i // len(files)] for i in range(count)]
    return [p.read_bytes() for p in chosen]


def _health() -> dict:
    try:
        return requests.get(f"http://127.0.0.1:{WORKER_PORT}/api/health", timeout=10).json()
    except (requests.RequestException, ValueError):
        return {}


def costs(port: int = WORKER_PORT) -> dict:
    return requests.get(f"http://127.0.0.1:{port}/api/stats/costs",
                        headers={"X-API-Key": ADMIN_KEY}, timeout=10).json()


def statuses(settings, ids: list[str]) -> dict[str, int]:
    marks = ", ".join(["%s"] * len(ids))
    rows = run_query(settings, f"SELECT status, COUNT(*) AS n FROM product_images WHERE"
                               f" image_id IN ({marks}) GROUP BY status", ids)
    return {row["status"]: row["n"] for row in rows}


@pytest.mark.skipif(not SELLERS.is_dir(), reason=f"no seller photos at {SELLERS}")
def test_broker_restarted_empty_under_a_running_worker(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("restart", run),
           "IMGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{BROKER_PORT}",
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": str(CAP)}
    scoped = namespaced(settings, env)
    broker = Broker(settings.logs_dir / f"broker-restart-{run}.log", port=BROKER_PORT)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-restart-{run}.log", env)
    log = settings.logs_dir / f"worker-restart-{run}.log"
    # AI-eligible photos spread through the batch, so money is spent on both sides of
    # the restart.
    photos = seller_photos(16)
    for i, photo in enumerate(ai_eligible_photos(6, seed=91)):
        photos.insert(i * 4, photo)
    broker.start()
    worker = start_worker(WORKER_PORT, log, env=env)
    try:
        worker.wait_ready(180)
        worker.wait_log("[^Worker]: Ready", 180)
        ids = upload_all(worker.base_url, photos, f"restart-{run}")
        wait_for(lambda: completed_count(scoped, ids) >= 1, 240, interval=0.1)
        broker.crash()
        at_stop = statuses(scoped, ids)
        stopped = time.monotonic()
        down = wait_for(lambda: (_health().get("checks", {}).get("broker", "ok") != "ok"
                                 and _health()), 30)
        seen_down = time.monotonic() - stopped
        time.sleep(DOWN_SECONDS)  # the outage itself
        broker.start()
        restarted = time.monotonic()
        print(f"statuses at the stop {at_stop}; health while down {down}")
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 240, interval=1)
            wait_for(lambda: costs()["open_reservations"] == 0, 60)
        except AssertionError:
            raise AssertionError(diagnosis(scoped, ids, emulator)
                                 + f"; log {log}") from None
        recovered = time.monotonic() - restarted
        assert worker.process.poll() is None, "the worker process ended"
        health = wait_for(lambda: _health().get("status") == "ok" and _health(), 60)
        print(f"health after {health}")
        table = costs()
        bill = emulator.stats()["totals"]
        print(f"recovered in {recovered:.0f}s; table {table}; bill {bill}")
    finally:
        worker.stop()
        broker.stop()
        emulator.stop()
    try:
        assert sum(n for s, n in at_stop.items() if s not in ("completed", "skipped")) > 0
        assert "failed" not in statuses(scoped, ids)
        assert run_query(scoped, "SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0
        text = log.read_text(errors="replace")
        assert "starting this worker again" in text
        redriven = re.search(r"drove (\d+) photos stranded by the broker loss", text)
        assert redriven and int(redriven.group(1)) > 0
        jobs = run_query(scoped, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS d FROM"
                                 " enhancement_jobs")[0]
        assert jobs["n"] == jobs["d"] == len(ids)
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM"
                                  " ai_usage_logs")[0]
        assert micros(bill["billed_usd"]) <= micros(CAP)
        assert table["downgraded_requests"] > 0, "the cap never bound: it is not tested"
        assert micros(table["settled_usd"]) == micros(bill["billed_usd"]), (table, bill)
        assert micros(usage["usd"]) == micros(bill["billed_usd"]), (usage, bill)
        MEASURED[f"broker restarted empty under a running worker, {len(ids)} photos"] = (
            f"/api/health said the broker was down {seen_down:.1f}s after the crash; {at_stop}"
            f" at the crash; the worker started itself again and re-drove "
            f"{redriven.group(1)} stranded photos; all completed once {recovered:.0f}s after "
            f"the restart, none failed, no dead letters; billed ${bill['billed_usd']:.2f} = "
            f"settled ${table['settled_usd']:.2f} = ai_usage_logs (cap ${CAP:.2f}, "
            f"{table['downgraded_requests']} requests downgraded)")
    finally:
        asyncio.run(_drop_namespace(scoped))


FROZEN_BROKER_PORT = 19593
FROZEN_WORKER_PORT = 16593
FREEZE_SECONDS = 12.0


@pytest.mark.skipif(not SELLERS.is_dir(), reason=f"no seller photos at {SELLERS}")
def test_a_frozen_broker_is_reported_down_and_waited_out(stack):
    """The broker hangs (SIGSTOP: connections open, nothing answers) while photos are in
    flight and more are uploaded, then resumes with everything it had: health says it is
    down while it hangs, uploads wait and are accepted, and no loss is mistaken."""
    import os
    import signal
    import threading

    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("frozen", run),
           "IMGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{FROZEN_BROKER_PORT}",
           "IMGSTREAM_AI_ENABLED": "false"}
    scoped = namespaced(settings, env)
    broker = Broker(settings.logs_dir / f"broker-frozen-{run}.log", port=FROZEN_BROKER_PORT)
    log = settings.logs_dir / f"worker-frozen-{run}.log"
    photos = seller_photos(18)
    base = f"http://127.0.0.1:{FROZEN_WORKER_PORT}"

    def broker_state() -> str:
        try:
            return requests.get(base + "/api/health", timeout=10).json()["checks"]["broker"]
        except (requests.RequestException, ValueError, KeyError):
            return "no answer"

    broker.start()
    worker = start_worker(FROZEN_WORKER_PORT, log, env=env)
    frozen = False
    try:
        worker.wait_ready(180)
        worker.wait_log("[^Worker]: Ready", 180)
        ids = upload_all(worker.base_url, photos[:12], f"frozen-{run}")
        os.kill(broker.process.pid, signal.SIGSTOP)
        frozen, froze_at = True, time.monotonic()
        at_freeze = statuses(scoped, ids)
        during: list[str] = []
        uploader = threading.Thread(target=lambda: during.extend(
            upload_all(worker.base_url, photos[12:], f"frozen-{run}", first=12)))
        uploader.start()
        down = wait_for(lambda: (lambda s: s != "ok" and s)(broker_state()), FREEZE_SECONDS)
        seen_down = time.monotonic() - froze_at
        time.sleep(max(0.0, FREEZE_SECONDS - seen_down))  # the rest of the freeze
        os.kill(broker.process.pid, signal.SIGCONT)
        frozen, resumed = False, time.monotonic()
        uploader.join(120)
        ids += during
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 240, interval=1)
        except AssertionError:
            raise AssertionError(f"statuses {statuses(scoped, ids)}; log {log}") from None
        recovered = time.monotonic() - resumed
        wait_for(lambda: broker_state() == "ok", 30)
    finally:
        if frozen:
            os.kill(broker.process.pid, signal.SIGCONT)
        worker.stop()
        broker.stop()
    try:
        print(f"statuses at the freeze {at_freeze}; health while frozen: {down}")
        assert len(during) == 6 and len(set(ids)) == 18  # the uploads during it got in
        assert sum(n for s, n in at_freeze.items() if s not in ("completed", "skipped")) > 0
        assert "failed" not in statuses(scoped, ids)
        assert run_query(scoped, "SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0
        jobs = run_query(scoped, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS d FROM"
                                 " enhancement_jobs")[0]
        assert jobs["n"] == jobs["d"] == len(ids)
        assert "starting this worker again" not in log.read_text(errors="replace")
        MEASURED[f"broker frozen {FREEZE_SECONDS:.0f} s (SIGSTOP), {len(ids)} photos"] = (
            f"/api/health said the broker was down {seen_down:.1f}s into the freeze; "
            f"{at_freeze} at the freeze, 6 more uploaded during it (all accepted); all "
            f"completed once {recovered:.0f}s after it resumed, none failed, no dead "
            f"letters, no loss mistaken")
    finally:
        asyncio.run(_drop_namespace(scoped))
