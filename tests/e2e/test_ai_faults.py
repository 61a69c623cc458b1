"""Bedrock misbehaving: 50% throttling and a 10 s outage. Photos complete, spend is exact.

One worker on the embedded stack, its own emulator throttling half the calls; after the
first paid call the emulator answers 503 for 10 s. Every photo completes (by AI after
retries, or by its local fallback when the retries run out), the retries show in the
worker's metrics, and what the emulator billed is what the table and ai_usage_logs say.
"""

from __future__ import annotations

import asyncio
import json
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
from tests.integration.kafka_reader import read_topic
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

EMULATOR_PORT = 16575
WORKER_PORT = 16178


def metric_sum(base_url: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples whose labels start with ``labels`` (e.g. 'a="b"')."""
    text = requests.get(base_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{" + labels)
               or (not labels and line.startswith(name + " ")))


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


def test_an_open_reservation_whose_spend_is_recorded_is_settled_from_the_record(stack):
    """The net under a settlement event lost after its spend was recorded: while a slow
    AI call holds its reservation, the spend appears in ai_usage_logs (written here as
    enhance_ai writes it before sending the settlement). The hold check settles the
    reservation from that record; the real settlement that follows changes nothing."""
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    port, emulator_port = WORKER_PORT + 4, EMULATOR_PORT + 3
    env = {**namespace_env("holds", run),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{emulator_port}",
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": "1.00",
           "IMGSTREAM_BUDGET_HOLD_CHECK_SECONDS": "1",
           "IMGSTREAM_EMULATOR_LATENCY_MS": "12000"}
    scoped = namespaced(settings, env)
    emulator = Emulator(emulator_port, settings.logs_dir / f"emulator-holds-{run}.log", env)
    worker = start_worker(port, settings.logs_dir / f"worker-holds-{run}.log", env=env)
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        [image_id] = upload_all(worker.base_url, ai_eligible_photos(1, seed=31), f"holds-{run}")
        [request_id] = wait_for(lambda: costs(port)["open_reservation_ids"], 120)
        day, held = costs(port)["day"], costs(port)["reserved_usd"]
        # The record of every AI step of the approved plan, written in one go as
        # save_ai_usage does, at half the catalog price (to tell it from the real bill).
        [approval] = [json.loads(m["value"]) for m in read_topic(scoped, "ai", expect=1)]
        steps = [s for s in approval["plan"]["steps"] if s["method"] == "ai"]
        written = [(step["model_id"], round(step["estimated_cost_usd"] / 2, 6))
                   for step in steps]
        for step, (model_id, cost) in zip(steps, written, strict=True):
            run_query(scoped, "INSERT INTO ai_usage_logs (request_id, step_order,"
                              " reservation_id, job_id, image_id, model_id, operation,"
                              " budget_day, cost_usd, latency_ms, success, cache_hit, attempts,"
                              " error_message) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 900,"
                              " 1, 0, 1, NULL)",
                      (request_id, step["order"], request_id, approval["job_id"], image_id,
                       model_id, step["operation"], day, cost))
        recorded_usd = round(sum(cost for _, cost in written), 6)
        recorded = wait_for(lambda: (c := costs(port))["open_reservations"] == 0 and c, 30)
        from_record = metric_sum(worker.base_url, "imgstream_budget_decisions_total",
                                 'decision="settled_from_record"')
        still_calling = emulator.stats()["totals"]["billed"] == 0
        wait_for(lambda: completed_count(scoped, [image_id]) == 1, 120)
        wait_for(lambda: emulator.stats()["totals"]["billed"] > 0, 30)
        after = costs(port)
    finally:
        worker.stop()
        emulator.stop()
    try:
        assert held > 0 and still_calling, "the hold was settled while its call ran"
        assert recorded["settled_usd"] == recorded_usd and recorded["reserved_usd"] == 0.0
        assert recorded["open_reservation_ids"] == []
        assert from_record >= 1
        # The real settlement came later: a duplicate of the recorded one (first wins).
        assert (after["settled_usd"], after["reserved_usd"], after["open_reservations"]) == (
            recorded_usd, 0.0, 0)
        rows = run_query(scoped, "SELECT model_id, cost_usd FROM ai_usage_logs ORDER BY"
                                 " step_order")
        assert [(r["model_id"], float(r["cost_usd"])) for r in rows] == written
        MEASURED["an open reservation whose spend is recorded (hold check every 1 s)"] = (
            f"reserved ${held:.2f}, settled from the record ${recorded_usd:.2f} while its"
            f" call ran; the real settlement afterwards changed nothing")
    finally:
        asyncio.run(_drop_namespace(scoped))
