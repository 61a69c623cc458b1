"""The broker restarts, empty, under two running workers with a batch in flight.

A private embedded broker (tansu, memory storage), its own Bedrock emulator and two
workers. The second worker is frozen (SIGSTOP) across the broker's crash and restart and
resumed only once the first one has started again, recreated every topic and re-driven
the stranded photos: its watch then finds every topic present, and only the broker's
epoch (a marker record the first worker's new life wrote) tells it that the broker it ran
on lost everything. Required: both workers notice and start again (the second from the
epoch), every photo completes exactly once and none fails, and the money agrees (billed
== settled == ai_usage_logs, within the cap).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid

import pytest

from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from tests.conftest import MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import (
    Emulator,
    ai_eligible_photos,
    completed_count,
    diagnosis,
    micros,
    upload_all,
)
from tests.e2e.test_broker_loss import Broker
from tests.e2e.test_broker_restart import SELLERS, costs, seller_photos, statuses
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

BROKER_PORT = 19891
WORKER_PORTS = (16891, 16893)
EMULATOR_PORT = 16892
CAP = 0.12  # binds: the 6 AI-eligible photos would spend $0.18
DOWN_SECONDS = 3.0
RESTARTED = "starting this worker again"


@pytest.mark.skipif(not SELLERS.is_dir(), reason=f"no seller photos at {SELLERS}")
def test_broker_restarted_empty_under_two_running_workers(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("restart2", run),
           "IMGSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{BROKER_PORT}",
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": str(CAP)}
    scoped = namespaced(settings, env)
    broker = Broker(settings.logs_dir / f"broker-restart2-{run}.log", port=BROKER_PORT)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-restart2-{run}.log", env)
    logs = [settings.logs_dir / f"worker-restart2-{run}-{p}.log" for p in WORKER_PORTS]
    photos = seller_photos(16)
    for i, photo in enumerate(ai_eligible_photos(6, seed=91)):
        photos.insert(i * 4, photo)
    broker.start()
    workers = [start_worker(port, log, env=env)
               for port, log in zip(WORKER_PORTS, logs, strict=True)]
    frozen = False
    try:
        for w in workers:
            w.wait_ready(180)
            w.wait_log("[^Worker]: Ready", 180)
        half = len(photos) // 2
        ids = upload_all(workers[0].base_url, photos[:half], f"restart2-{run}")
        ids += upload_all(workers[1].base_url, photos[half:], f"restart2-{run}", first=half)
        assert len(set(ids)) == len(photos)
        wait_for(lambda: completed_count(scoped, ids) >= 1, 240, interval=0.1)
        os.kill(workers[1].process.pid, signal.SIGSTOP)
        frozen = True
        broker.crash()
        at_stop = statuses(scoped, ids)
        time.sleep(DOWN_SECONDS)
        broker.start()
        restarted = time.monotonic()
        print(f"statuses at the stop {at_stop}")
        try:
            # The first worker has started again, declared the topics and re-driven.
            wait_for(lambda: "stranded by the broker loss again" in logs[0].read_text(
                errors="replace"), 90)
            os.kill(workers[1].process.pid, signal.SIGCONT)
            frozen = False
            wait_for(lambda: RESTARTED in logs[1].read_text(errors="replace"), 60)
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 240, interval=1)
            wait_for(lambda: costs(WORKER_PORTS[0])["open_reservations"] == 0, 60)
        except AssertionError:
            raise AssertionError(diagnosis(scoped, ids, emulator)
                                 + f"; logs {[str(p) for p in logs]}") from None
        recovered = time.monotonic() - restarted
        for w in workers:
            assert w.process.poll() is None, f"the worker on {w.web_port} ended"
        table = costs(WORKER_PORTS[0])
        bill = emulator.stats()["totals"]
        print(f"recovered in {recovered:.0f}s; table {table}; bill {bill}")
    finally:
        if frozen:
            os.kill(workers[1].process.pid, signal.SIGCONT)
        for w in workers:
            w.stop()
        broker.stop()
        emulator.stop()
    try:
        assert sum(n for s, n in at_stop.items() if s not in ("completed", "skipped")) > 0
        assert "failed" not in statuses(scoped, ids)
        assert run_query(scoped, "SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0
        causes = []
        for log in logs:
            text = log.read_text(errors="replace")
            found = re.findall(r"the broker lost \d+ of our topics \(.*?; (.*?)\): its", text)
            assert found, f"{log} never noticed the loss"
            causes.append(found[0])
        print(f"causes {causes}")
        assert "epoch changed" in causes[1], causes
        jobs = run_query(scoped, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS d FROM"
                                 " enhancement_jobs")[0]
        assert jobs["n"] == jobs["d"] == len(ids)
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM"
                                  " ai_usage_logs")[0]
        assert micros(bill["billed_usd"]) <= micros(CAP)
        assert micros(table["settled_usd"]) == micros(bill["billed_usd"]), (table, bill)
        assert micros(usage["usd"]) == micros(bill["billed_usd"]), (usage, bill)
        MEASURED[f"broker restarted empty under two running workers, {len(ids)} photos"] = (
            f"{at_stop} at the crash; both workers started again ({'; '.join(causes)}); all "
            f"completed once {recovered:.0f}s after the restart, none failed, no dead "
            f"letters; billed ${bill['billed_usd']:.2f} = settled "
            f"${table['settled_usd']:.2f} = ai_usage_logs (cap ${CAP:.2f})")
    finally:
        asyncio.run(_drop_namespace(scoped))
