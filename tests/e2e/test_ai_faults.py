"""Bedrock misbehaving: 50% throttling and a 10 s outage. Photos complete, spend is exact.

One worker on the embedded stack, its own emulator throttling half the calls; after the
first paid call the emulator answers 503 for 10 s. Every photo completes (by AI after
retries, or by its local fallback when the retries run out), the retries show in the
worker's metrics, and what the emulator billed is what the table and ai_usage_logs say.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import requests

from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from tests.conftest import MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import (
    Emulator,
    ai_eligible_photos,
    completed_count,
    costs,
    diagnosis,
    micros,
    upload_all,
)
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

EMULATOR_PORT = 16575
WORKER_PORT = 16178


def metric_sum(base_url: str, name: str) -> float:
    text = requests.get(base_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_throttling_and_an_outage_still_complete_with_exact_spend(stack):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("faults", run),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_EMULATOR_THROTTLE_RATE": "0.5", "IMGSTREAM_EMULATOR_LATENCY_MS": "100"}
    scoped = namespaced(settings, env)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-faults-{run}.log", env)
    worker = start_worker(WORKER_PORT, settings.logs_dir / f"worker-faults-{run}.log", env=env)
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        ids = upload_all(worker.base_url, ai_eligible_photos(16, seed=23), f"faults-{run}")
        wait_for(lambda: emulator.stats()["totals"]["billed"] >= 1, 240)
        emulator.faults(outage_seconds=10)
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 600)
            wait_for(lambda: costs(WORKER_PORT)["open_reservations"] == 0, 60)
        except AssertionError:
            raise AssertionError(diagnosis(scoped, ids, emulator)) from None
        bill = emulator.stats()["totals"]
        table = costs(WORKER_PORT)
        retries = metric_sum(worker.base_url, "imgstream_bedrock_retries_total")
    finally:
        worker.stop()
        emulator.stop()
    try:
        assert bill["throttled"] > 0 and bill["errors"] > 0, bill  # both faults happened
        assert retries > 0, "retries show in the metrics"
        assert bill["billed"] > 0
        assert micros(table["settled_usd"]) == micros(bill["billed_usd"])
        assert table["paid_calls"] == bill["billed"]
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM ai_usage_logs")
        assert micros(usage[0]["usd"]) == micros(bill["billed_usd"])
        ai_steps = run_query(scoped, "SELECT COUNT(*) AS n FROM processing_steps"
                                     " WHERE method = 'ai'")[0]["n"]
        assert ai_steps == bill["billed"]  # distinct photos: no cache hits
        jobs = run_query(scoped, "SELECT COUNT(*) AS n, COUNT(DISTINCT image_id) AS d"
                                 " FROM enhancement_jobs")[0]
        assert jobs["n"] == jobs["d"] == len(ids)
        MEASURED["AI faults, 50% throttling + 10 s outage, 16 photos"] = (
            f"received {bill['received']}, throttled {bill['throttled']}, 5xx "
            f"{bill['errors']}, billed {bill['billed']} (${bill['billed_usd']:.2f}) = settled "
            f"${table['settled_usd']:.2f}; client retries {retries:.0f}; AI steps {ai_steps}")
    finally:
        asyncio.run(_drop_namespace(scoped))


def test_calls_slower_than_the_client_timeout_are_counted_once_and_never_repeated(stack):
    """Bedrock answers after the client gave up: the call was billed all the same. Each
    such attempt is counted as paid and not retried, so what the table and ai_usage_logs
    say equals what was billed, and each AI step was sent once."""
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("slow", run),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT + 1}",
           "IMGSTREAM_BEDROCK_TIMEOUT_SECONDS": "1",
           "IMGSTREAM_EMULATOR_LATENCY_MS": "2500"}
    scoped = namespaced(settings, env)
    emulator = Emulator(EMULATOR_PORT + 1, settings.logs_dir / f"emulator-slow-{run}.log", env)
    worker = start_worker(WORKER_PORT + 1, settings.logs_dir / f"worker-slow-{run}.log",
                          env=env)
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        ids = upload_all(worker.base_url, ai_eligible_photos(6, seed=29), f"slow-{run}")
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 600)
            wait_for(lambda: costs(WORKER_PORT + 1)["open_reservations"] == 0, 60)
            # The emulator bills a call when its model finishes, after the client left.
            wait_for(lambda: (t := emulator.stats()["totals"])["billed"] == t["received"], 60)
        except AssertionError:
            raise AssertionError(diagnosis(scoped, ids, emulator)) from None
        bill = emulator.stats()["totals"]
        table = costs(WORKER_PORT + 1)
    finally:
        worker.stop()
        emulator.stop()
    try:
        steps = run_query(scoped, "SELECT COUNT(*) AS n FROM ai_usage_logs")[0]["n"]
        assert bill["billed"] > 0 and bill["received"] == steps  # one call per AI step
        assert micros(table["settled_usd"]) == micros(bill["billed_usd"])
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM ai_usage_logs")
        assert micros(usage[0]["usd"]) == micros(bill["billed_usd"])
        reasons = [r["details"] for r in run_query(
            scoped, "SELECT details FROM processing_steps WHERE step_name IN"
                    " (SELECT DISTINCT operation FROM ai_usage_logs) AND method = 'local'")]
        unconfirmed = [r for r in reasons if str(r).startswith("ai_failed: unconfirmed_attempt")]
        assert len(unconfirmed) == steps, reasons
        MEASURED["Bedrock slower than the client timeout, 6 photos"] = (
            f"{bill['received']} calls sent, {bill['billed']} billed (${bill['billed_usd']:.2f})"
            f" = settled ${table['settled_usd']:.2f}; every AI step fell back, none retried")
    finally:
        asyncio.run(_drop_namespace(scoped))
