"""``imgstream replay`` on the real stack: a stricter profile over a catalog of 12 photos.

A worker of this module's own (its namespace, a profiles folder with ``strict`` and
``lenient``, a Bedrock emulator of its own so AI calls can be counted) processes the
batch under the default profile. Then: a dry run projects the tier moves and writes
nothing; the real replay runs while live uploads continue, and must record exactly the
projected moves, keep the default rows, make the strict result current and never starve
the live consumer group; a second identical replay does nothing and pays nothing. The
last test interrupts a replay with SIGINT and resumes it: every photo requested once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from imaging.samples import generate_sample_batch
from infra.namespace import namespace_env, namespaced
from infra.workers import WorkerProcess, start_worker
from profiles import load_profile
from streams.settings import Settings
from streams.topics import TOPIC_SPECS
from tests.conftest import API_KEY, MEASURED, _drop_namespace, run_query
from tests.e2e.test_ai_budget import Emulator
from tests.integration.kafka_reader import read_topic
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

WORKER_PORT = 16180
EMULATOR_PORT = 16181
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VERSION = load_profile("default").version
STRICT = {"name": "strict", "version": "1.0.0-strict", "excellent": 87.0, "good": 70.0}
LENIENT = {"name": "lenient", "version": "1.0.0-lenient", "excellent": 75.0, "good": 55.0}


def write_profile(folder: Path, spec: dict) -> None:
    """profiles/default.toml with another name, version and tier thresholds."""
    text = (ROOT / "profiles" / "default.toml").read_text()
    replaced = {'name = "default"': f'name = "{spec["name"]}"',
                f'version = "{DEFAULT_VERSION}"': f'version = "{spec["version"]}"',
                "excellent = 80.0 ": f"excellent = {spec['excellent']} ",
                "good = 60.0 ": f"good = {spec['good']} "}
    for old, new in replaced.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (folder / f"{spec['name']}.toml").write_text(text)


@dataclass
class Catalog:
    run: str
    env: dict[str, str]
    settings: Settings
    worker: WorkerProcess
    emulator: Emulator
    seller: str
    ids: dict[str, str]  # image id -> sample name

    def query(self, sql: str, args=None) -> list[dict]:
        return run_query(self.settings, sql, args)

    def replay(self, *args: str, timeout: float = 600) -> tuple[int, dict]:
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", "replay", *args, "--json",
             "--api", self.worker.base_url],
            env={**os.environ, **self.env}, capture_output=True, timeout=timeout)
        assert result.stdout, result.stderr.decode()[-3000:]
        return result.returncode, json.loads(result.stdout)

    def upload(self, data: bytes, seller: str, sku: str) -> str:
        response = requests.post(self.worker.base_url + "/api/images/upload",
                                 headers={"X-API-Key": API_KEY},
                                 data={"seller_id": seller, "sku_id": sku},
                                 files={"file": (f"{sku}.jpg", data)}, timeout=60)
        assert response.status_code in (200, 201), response.text
        return response.json()["image_id"]

    def finished(self, ids) -> int:
        marks = ", ".join(["%s"] * len(ids))
        return self.query(f"SELECT COUNT(*) AS n FROM product_images WHERE image_id IN"
                          f" ({marks}) AND status IN ('completed', 'skipped')",
                          tuple(ids))[0]["n"]

    def tiers(self, profile: dict) -> dict[str, str]:
        rows = self.query("SELECT image_id, quality_tier FROM quality_metrics WHERE"
                          " metric_type = 'before' AND profile_name = %s AND"
                          " profile_version = %s", (profile["name"], profile["version"]))
        return {r["image_id"]: r["quality_tier"] for r in rows if r["image_id"] in self.ids}

    def end_offsets(self, short: str) -> dict[int, int]:
        return end_offsets(self.settings, self.settings.topic_name(TOPIC_SPECS[short].name))


def end_offsets(settings: Settings, topic: str, group: str = "replay-test-probe"
                ) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
    finally:
        consumer.close()


def committed(settings: Settings, topic: str, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        answer = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in answer}
    finally:
        consumer.close()


class LagSampler(threading.Thread):
    """The live consumer group's lag on images.uploaded (end - committed), every 250 ms."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.topic = settings.topic_name(TOPIC_SPECS["uploaded"].name)
        self.settings, self.samples = settings, []
        self.stopping = threading.Event()

    def run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": self.settings.app_id})  # never subscribes
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[
                self.topic].partitions
            tps = [TopicPartition(self.topic, p) for p in partitions]
            while not self.stopping.is_set():
                done = {tp.partition: max(tp.offset, 0)
                        for tp in consumer.committed(tps, timeout=10)}
                ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                          timeout=10)[1] for p in partitions}
                self.samples.append(sum(max(ends[p] - done[p], 0) for p in partitions))
                time.sleep(0.25)
        finally:
            consumer.close()


@pytest.fixture(scope="module")
def catalog(stack, tmp_path_factory):
    _, settings = stack
    run = uuid.uuid4().hex[:8]
    profiles = tmp_path_factory.mktemp("profiles")
    for spec in (STRICT, LENIENT):
        write_profile(profiles, spec)
    env = {**namespace_env("replay", run), "IMGSTREAM_PROFILES_DIR": str(profiles),
           "IMGSTREAM_BEDROCK_ENDPOINT": f"http://127.0.0.1:{EMULATOR_PORT}",
           "IMGSTREAM_API_KEYS": API_KEY, "IMGSTREAM_WEB_PORT": str(WORKER_PORT)}
    scoped = namespaced(settings, env)
    emulator = Emulator(EMULATOR_PORT, settings.logs_dir / f"emulator-replay-{run}.log", env)
    worker = start_worker(WORKER_PORT, settings.logs_dir / f"worker-replay-{run}.log", env=env)
    try:
        worker.wait_ready(120)
        worker.wait_log("[^Worker]: Ready", 120)
        cat = Catalog(run, env, scoped, worker, emulator, f"replay-{run}", {})
        for sample in generate_sample_batch():
            cat.ids[cat.upload(sample.data, cat.seller, sample.name.rsplit(".", 1)[0])] = \
                sample.name
        assert len(cat.ids) == 12
        wait_for(lambda: cat.finished(cat.ids) == 12, 300)
        yield cat
    finally:
        worker.stop()
        emulator.stop()
        asyncio.run(_drop_namespace(scoped))


def test_dry_run_projects_then_replay_records_the_same_moves_without_starving_live_work(
        catalog):
    default = {"name": "default", "version": DEFAULT_VERSION}
    default_tiers = catalog.tiers(default)
    assert len(default_tiers) == 12
    received_before = catalog.emulator.stats()["totals"]["received"]
    producer = Producer({"bootstrap.servers": catalog.settings.kafka_bootstrap})
    producer.produce(catalog.settings.topic_name(TOPIC_SPECS["uploaded"].name),
                     key=b"poison", value=b"not an upload")  # counted and skipped
    assert producer.flush(10) == 0

    # Dry run: projections, nothing written, nothing sent, nothing paid.
    code, dry = catalog.replay("--profile", "strict", "--dry-run", "--per-image")
    assert code == 0, dry
    assert dry["dry_run"] and dry["scanned"] == 13 and dry["matched"] == 12
    assert dry["invalid"] == 1
    assert dry["would_request"] == 12 and dry["skipped_unchanged"] == 0 and not dry["failed"]
    projected = {i["image_id"]: (i["current_tier"], i["new_tier"]) for i in dry["images"]}
    assert projected.keys() == catalog.ids.keys()
    assert {i: old for i, (old, _) in projected.items()} == default_tiers
    assert dry["tier_moves_summary"]["down"] >= 2, dry["tier_moves"]
    assert isinstance(dry["budget"], dict) and dry["fits_budget"] is True
    assert catalog.tiers(STRICT) == {}
    assert catalog.query("SELECT COUNT(*) AS n FROM enhancement_jobs WHERE profile_version"
                         " = %s", (STRICT["version"],))[0]["n"] == 0
    assert sum(catalog.end_offsets("replay").values()) == 0
    assert catalog.emulator.stats()["totals"]["received"] == received_before

    # Live uploads go on while the catalog is replayed; --to keeps them out of its range.
    range_end = datetime.now(UTC).isoformat()
    live_data = [s.data for s in generate_sample_batch(seed=21, count=8)]
    live_ids: list[str] = []
    sampler = LagSampler(catalog.settings)

    def live() -> None:
        for i, data in enumerate(live_data):
            live_ids.append(catalog.upload(data, f"live-{catalog.run}", f"LIVE-{i}"))
            time.sleep(1.5)

    uploader = threading.Thread(target=live, daemon=True)
    uploader.start()
    time.sleep(2)  # some live uploads are in the topic before the replay starts
    sampler.start()
    code, real = catalog.replay("--profile", "strict", "--to", range_end, "--wait",
                                "--wait-timeout", "400")
    sampler.stopping.set()
    uploader.join(60)
    sampler.join(15)
    assert code == 0, real
    assert real["requested"] == 12 and real["completed_jobs"] == 12 and real["failed_jobs"] == 0
    assert (real["scanned"], real["matched"], real["invalid"]) == (13, 12, 1)
    assert not real["interrupted"]
    assert real["tier_moves"] == dry["tier_moves"]

    # Versioned results: strict rows for every photo, the default ones kept, strict current.
    marks = ", ".join(["%s"] * 12)
    ids = tuple(catalog.ids)
    jobs = catalog.query(f"SELECT image_id, profile_version, status FROM enhancement_jobs"
                         f" WHERE image_id IN ({marks})", ids)
    for version in (DEFAULT_VERSION, STRICT["version"]):
        rows = [j for j in jobs if j["profile_version"] == version]
        assert {j["image_id"] for j in rows} == set(ids), version
        assert {j["status"] for j in rows} <= {"completed", "skipped"}
    assert catalog.tiers(default) == default_tiers
    strict_tiers = catalog.tiers(STRICT)
    assert {i: (default_tiers[i], strict_tiers[i]) for i in ids} == projected
    current = catalog.query(f"SELECT current_profile_version AS v FROM product_images WHERE"
                            f" image_id IN ({marks})", ids)
    assert {r["v"] for r in current} == {STRICT["version"]}

    # Live work was not starved: its lag stayed below the uploads made meanwhile.
    assert sampler.samples, "no lag sample"
    assert max(sampler.samples) < len(live_data), sampler.samples
    MEASURED["replay of 12 photos: dry run / real with --wait (8 live uploads meanwhile)"] = (
        f"{dry['elapsed_s']:.1f}s / {real['elapsed_s']:.1f}s; live group lag max "
        f"{max(sampler.samples)} (samples {len(sampler.samples)})")
    wait_for(lambda: catalog.finished(live_ids) == len(live_data), 240)
    live_versions = catalog.query("SELECT DISTINCT current_profile_version AS v FROM"
                                  " product_images WHERE seller_id = %s",
                                  (f"live-{catalog.run}",))
    assert [r["v"] for r in live_versions] == [DEFAULT_VERSION]

    # The same replay again: nothing to do, nothing sent, nothing paid, no new rows.
    def counts() -> tuple:
        return tuple(catalog.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
                     for table in ("enhancement_jobs", "quality_metrics", "processing_steps",
                                   "ai_usage_logs"))

    time.sleep(3)  # the sinks of the live uploads settle
    rows_before, replay_ends = counts(), catalog.end_offsets("replay")
    received = catalog.emulator.stats()["totals"]["received"]
    code, again = catalog.replay("--profile", "strict", "--to", range_end, "--wait")
    assert code == 0, again
    assert again["scanned"] == 13 and again["requested"] == 0
    assert again["skipped_unchanged"] == 12 and not again["resumed"]
    time.sleep(3)
    assert catalog.end_offsets("replay") == replay_ends
    assert counts() == rows_before
    assert catalog.emulator.stats()["totals"]["received"] == received


def test_an_interrupted_replay_resumes_and_requests_every_photo_once(catalog):
    group = f"{catalog.settings.app_id}-replay-{LENIENT['name']}-{LENIENT['version']}"
    uploaded = catalog.settings.topic_name(TOPIC_SPECS["uploaded"].name)
    args = ("--profile", "lenient", "--seller", catalog.seller)
    sent_before = sum(catalog.end_offsets("replay").values())
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "replay", *args, "--rate", "2", "--json"],
        env={**os.environ, **catalog.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sum(catalog.end_offsets("replay").values()) >= sent_before + 3, 120)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()[-2000:]
    first = json.loads(stdout)
    assert first["interrupted"] and not first["resumed"] and 0 < first["requested"] < 12, first
    progress = sum(committed(catalog.settings, uploaded, group).values())

    code, second = catalog.replay(*args, "--wait", "--wait-timeout", "400")
    assert code == 0, second
    assert second["resumed"] and not second["interrupted"]
    assert second["in_range"] == first["in_range"] - progress  # what was left, no more
    assert first["requested"] + second["requested"] == 12
    assert second["completed_jobs"] == second["requested"] and second["failed_jobs"] == 0

    requests_sent = [json.loads(m["value"]) for m in read_topic(catalog.settings, "replay")]
    lenient = [r["image_id"] for r in requests_sent if r["profile"] == {
        "name": LENIENT["name"], "version": LENIENT["version"]}]
    assert sorted(lenient) == sorted(catalog.ids)  # each photo requested exactly once
    wait_for(lambda: len(catalog.tiers(LENIENT)) == 12, 120)
    marks = ", ".join(["%s"] * 12)
    assert catalog.query(f"SELECT stage, error_message FROM dead_letters WHERE image_id IN"
                         f" ({marks})", tuple(catalog.ids)) == []
    # The range was completed: its group's offsets are gone, a new run starts afresh.
    assert sum(committed(catalog.settings, uploaded, group).values()) == 0
