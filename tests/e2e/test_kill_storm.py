"""Ten SIGKILLs of a worker at random points of one batch: each photo completes once.

One worker on the embedded broker (a namespace of its own) with its own Bedrock emulator
and a daily cap; one batch of seller photos and AI-eligible ones uploaded over HTTP; then
ten times: wait a random delay after the worker's agents are ready (seeded, printed, so
a failure can be replayed with IMGSTREAM_KILL_SEED), SIGKILL its process group, start it
again. Kills land mid-event, between an effect and its commit, and after partitions have
committed offsets (photos complete between kills). Required at the end: every photo
completed, none failed, one job and one completion event id per photo (redelivered
copies of a completion carry the same event id), and the money agrees within the cap.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition

from infra.namespace import namespace_env, namespaced
from infra.workers import start_worker
from streams.topics import TOPIC_SPECS
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
from tests.e2e.test_broker_restart import SELLERS, seller_photos
from tests.integration.kafka_reader import read_topic
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

WORKER_PORT = 16594
EMULATOR_PORT = 16595
KILLS = 10
CAP = 0.18  # binds: the 8 AI-eligible photos would spend $0.24


def committed_offsets(settings) -> int:
    """The sum of the offsets the worker's group has committed on the namespace's topics
    (an OffsetFetch: reading them does not join the group)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": settings.app_id, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(settings.topic_name(spec.name), p)
                      for spec in TOPIC_SPECS.values()
                      for p in range(spec.partitions or settings.topic_partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
    finally:
        consumer.close()


@pytest.mark.skipif(not SELLERS.is_dir(), reason=f"no seller photos at {SELLERS}")
def test_ten_sigkills_at_random_points_of_one_batch(stack):
    _, settings = stack
    seed = int(os.environ.get("IMGSTREAM_KILL_SEED") or random.SystemRandom().randrange(10**6))
    print(f"kill storm seed {seed} (replay: IMGSTREAM_KILL_SEED={seed})")
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env("kills", run),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_BUDGET_DAILY_CAP_USD": str(CAP),
           # A killed member holds the group until its session times out: shorter lives.
           "IMGSTREAM_BROKER_SESSION_TIMEOUT": "6",
           "IMGSTREAM_EMULATOR_LATENCY_MS": "200", "IMGSTREAM_EMULATOR_LATENCY_P95_MS": "500"}
    scoped = namespaced(settings, env)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-kills-{run}.log", env)
    log = settings.logs_dir / f"worker-kills-{run}.log"
    photos = seller_photos(22) + ai_eligible_photos(8, seed=seed % 1000)
    started = time.monotonic()
    worker = start_worker(WORKER_PORT, log, env=env)
    # (delay after ready, photos completed, offsets committed) at each kill
    kills: list[tuple[float, int, int]] = []
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        ids = upload_all(worker.base_url, photos, f"kills-{run}")
        for _ in range(KILLS):
            delay = rng.uniform(0.3, 3.0)
            time.sleep(delay)  # the random point of the batch where this life ends
            done, committed = completed_count(scoped, ids), committed_offsets(scoped)
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(10)
            kills.append((round(delay, 2), done, committed))
            worker = start_worker(WORKER_PORT, log, env=env)
            worker.wait_log("[^Worker]: Ready", 120)
        try:
            wait_for(lambda: completed_count(scoped, ids) == len(ids), 180)
            wait_for(lambda: costs(WORKER_PORT)["open_reservations"] == 0, 60)
        except AssertionError:
            raise AssertionError(f"seed {seed}, kills {kills}: "
                                 + diagnosis(scoped, ids, emulator) + f"; costs "
                                 f"{costs(WORKER_PORT)}; log {log}") from None
        table = costs(WORKER_PORT)
        bill = emulator.stats()["totals"]
    finally:
        worker.stop()
        emulator.stop()
    elapsed = time.monotonic() - started
    try:
        print(f"seed {seed}; kills (delay s, completed, offsets committed) {kills}")
        in_flight = [k for k in kills if k[1] < len(ids)]
        # Kills must hit the batch, and not only before anything was committed: some land
        # after partitions committed offsets, with photos completed and others in flight.
        assert len(in_flight) >= 3, kills
        assert sum(1 for k in in_flight if k[1] > 0 and k[2] > 0) >= 3, kills
        marks = ", ".join(["%s"] * len(ids))
        statuses = run_query(scoped, f"SELECT status, COUNT(*) AS n FROM product_images WHERE"
                                     f" image_id IN ({marks}) GROUP BY status", ids)
        assert {s["status"] for s in statuses} <= {"completed", "skipped"}, statuses
        jobs = run_query(scoped, f"SELECT image_id, COUNT(*) AS n FROM enhancement_jobs WHERE"
                                 f" image_id IN ({marks}) GROUP BY image_id", ids)
        assert len(jobs) == len(ids) and {j["n"] for j in jobs} == {1}
        assert run_query(scoped, "SELECT job_id FROM processing_steps GROUP BY job_id,"
                                 " step_order HAVING COUNT(*) > 1") == []
        # The completed topic: one completion (event id) per photo; redeliveries after a
        # kill between emitting and committing are copies with the same id.
        copies: dict[str, list[str]] = defaultdict(list)
        for message in read_topic(scoped, "completed", expect=len(ids), timeout=60):
            event = json.loads(message["value"])
            copies[event["image_id"]].append(event["event_id"])
        assert set(copies) == set(ids)
        assert all(len(set(v)) == 1 for v in copies.values()), copies
        redelivered = sum(len(v) - 1 for v in copies.values())
        letters = run_query(scoped, "SELECT COUNT(*) AS n FROM dead_letters")[0]["n"]
        assert letters == 0
        # Money: billed == settled (a call cut by a kill after its attempt marker counts
        # as paid, "unconfirmed_attempt", and is never made again), all within the cap.
        unconfirmed = run_query(scoped, "SELECT COUNT(*) AS n, COALESCE(SUM(cost_usd), 0)"
                                        " AS usd FROM ai_usage_logs WHERE error_message LIKE"
                                        " '%%unconfirmed_attempt%%'")[0]
        usage = run_query(scoped, "SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM"
                                  " ai_usage_logs")[0]
        billed, settled = micros(bill["billed_usd"]), micros(table["settled_usd"])
        assert bill["billed"] > 0, "no AI call was made: the money is not tested"
        assert billed <= settled <= billed + micros(unconfirmed["usd"]), (bill, table)
        assert micros(usage["usd"]) == settled
        assert settled <= micros(CAP) and billed <= micros(CAP)
        assert table["downgraded_requests"] > 0, "the cap never bound: it is not tested"
        MEASURED[f"{KILLS} SIGKILLs in one batch of {len(ids)} photos (seed {seed})"] = (
            f"{len(in_flight)} kills hit unfinished photos (completed at each kill: "
            f"{[k[1] for k in kills]}; offsets committed: {[k[2] for k in kills]}); all "
            f"completed once, none failed, {redelivered} "
            f"redelivered completion copies (same event id); billed ${bill['billed_usd']:.2f}"
            f" ({bill['billed']} calls), settled ${table['settled_usd']:.2f} "
            f"({unconfirmed['n']} unconfirmed), cap ${CAP:.2f} ({table['downgraded_requests']} "
            f"requests downgraded); {elapsed:.0f} s in all")
    finally:
        asyncio.run(_drop_namespace(scoped))
