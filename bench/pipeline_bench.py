"""End-to-end throughput and latency of the local path on the embedded stack (issue 4).

    .venv/bin/python bench/pipeline_bench.py [--sellers 120] [--megapixel 24] [--unpinned]

Starts two workers in a namespace of their own on the embedded stack (``stack up`` first),
each pinned to one core (``IMGSTREAM_CPU_SET``) as each process of the pure loop is,
uploads a batch through the HTTP API as fast as the workers take it, and times upload of
the first photo to completion of the last (MySQL). The same photos then go through the
pure compute loop (``imaging.local_path.process_locally``: the functions the agents run)
in one process per core. Printed: both rates and their ratio (target >= 0.85), for
seller-size and 1 MP photos, the CPU milliseconds per photo of the pure loop and of each
process of the pipeline (workers, SeaweedFS, broker, MariaDB, the uploading client: where
the difference goes), and p50/p95 upload->completed latency at half the measured
throughput. Everything the run created is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import multiprocessing
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import requests

from imaging.local_path import process_locally
from imaging.samples import render_product_scene
from infra.namespace import drop_namespace, namespace_env, namespaced
from infra.stack import Stack
from infra.workers import WorkerProcess, start_worker
from profiles import load_profile
from services.database import Database
from services.model_catalog import load_catalog
from streams.settings import Settings

SELLERS = Path(os.environ.get("IMGSTREAM_SHARED", Path(__file__).resolve().parents[2] /
                              "shared")) / "images" / "sellers"
PORTS = (16366, 16367)


def megapixel_photos(count: int) -> list[bytes]:
    rng = np.random.default_rng(9)
    combos = [("mug", "white"), ("box", "wood"), ("sneaker", "sweep"), ("lamp", "desk"),
              ("bottle", "grey"), ("tshirt", "wood")]
    photos = []
    for i in range(count):
        product, background = combos[i % len(combos)]
        bgr = render_product_scene(rng, product=product, background=background,
                                   width=1000, height=1000)
        photos.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return photos


_pure_setup: tuple[Any, Any] | None = None


def _pure_init() -> None:
    """Pool start-up (imports, profile, catalog) is not compute: the workers are warm too."""
    global _pure_setup
    cv2.setNumThreads(1)
    _pure_setup = load_profile("default"), load_catalog()


def _pure_loop(args: tuple[list[bytes], int]) -> tuple[int, float]:
    photos, cpu = args
    if not photos:  # the warm-up round
        return 0, 0.0
    os.sched_setaffinity(0, {cpu})
    assert _pure_setup is not None
    profile, catalog = _pure_setup
    started = time.process_time()
    for data in photos:
        process_locally(data, profile, catalog)
    return len(photos), time.process_time() - started


def pure_rate(photos: list[bytes]) -> tuple[float, float]:
    """(images/s, CPU seconds per photo) of the pure loop, one warm process per core."""
    cpus = sorted(os.sched_getaffinity(0))
    shares = [photos[i::len(cpus)] for i in range(len(cpus))]
    with multiprocessing.get_context("spawn").Pool(len(cpus), initializer=_pure_init) as pool:
        pool.map(_pure_loop, [([], cpu) for cpu in cpus], chunksize=1)
        started = time.perf_counter()
        results = pool.map(_pure_loop, list(zip(shares, cpus, strict=True)), chunksize=1)
        elapsed = time.perf_counter() - started
    done = sum(n for n, _ in results)
    return done / elapsed, sum(c for _, c in results) / done


# Which process a CPU second belongs to, by its command line (first match wins).
PROCESS_GROUPS = (("workers", "faust -A streams.app worker"), ("SeaweedFS", "weed"),
                  ("broker (tansu)", "tansu"), ("MariaDB", "mariadbd"), ("moto", "moto"),
                  ("Bedrock emulator", "emulator bedrock"))


def cpu_by_group(worker_pids: set[int]) -> dict[str, float]:
    """CPU seconds used so far by the pipeline's processes, grouped (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        if pid == os.getpid():
            group = "bench client (uploads)"
        elif pid in worker_pids:
            group = "workers"
        else:
            group = next((g for g, needle in PROCESS_GROUPS[1:] if needle in command), "")
        if group:
            totals[group] = totals.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def cpu_report(before: dict[str, float], after: dict[str, float], photos: int) -> str:
    used = {g: (after.get(g, 0.0) - before.get(g, 0.0)) * 1000 / photos for g in after}
    parts = [f"{g} {ms:.0f}" for g, ms in sorted(used.items(), key=lambda i: -i[1]) if ms >= 1]
    return ", ".join(parts) + f"; total {sum(used.values()):.0f}"


def upload(base_url: str, data: bytes, sku: str) -> tuple[str, float]:
    sent = time.time()
    response = requests.post(base_url + "/api/images/upload",
                             data={"seller_id": "bench", "sku_id": sku},
                             files={"file": (f"{sku}.jpg", data)}, timeout=120)
    response.raise_for_status()
    return response.json()["image_id"], sent


async def completion_times(settings: Settings, image_ids: list[str],
                           timeout: float) -> dict[str, float]:
    """image_id -> completed_at (epoch seconds), waiting until all are done."""
    db = await Database.connect(settings)
    marks = ", ".join(["%s"] * len(image_ids))
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = await db.fetchall(
                f"SELECT image_id, completed_at FROM enhancement_jobs WHERE image_id IN ({marks})"
                " AND completed_at IS NOT NULL", image_ids)
            if len(rows) >= len(set(image_ids)) or time.monotonic() > deadline:
                return {r["image_id"]: r["completed_at"].replace(tzinfo=UTC).timestamp()
                        for r in rows}
            await asyncio.sleep(0.2)
    finally:
        await db.close()


def run_batch(base_urls: list[str], settings: Settings, photos: list[bytes], label: str,
              rate: float | None = None) -> tuple[float, float, list[float]]:
    """Upload (all at once, or at ``rate`` per second).

    Returns images/s from the first upload to the last completion, images/s between the
    10th and the 90th percentile completion (the steady state, without the pipeline's
    fill and drain), and the upload->completed latencies in seconds.
    """
    from concurrent.futures import ThreadPoolExecutor

    run = uuid.uuid4().hex[:6]
    started = time.time()
    sent: dict[str, float] = {}
    with ThreadPoolExecutor(8) as pool:
        futures = []
        for i, data in enumerate(photos):
            if rate:
                time.sleep(max(0.0, started + i / rate - time.time()))
            futures.append(pool.submit(upload, base_urls[i % len(base_urls)], data,
                                       f"{label}-{run}-{i}"))
        for future in futures:
            image_id, at = future.result()
            sent[image_id] = at
    done = asyncio.run(completion_times(settings, list(sent), timeout=900))
    if len(done) < len(sent):
        raise SystemExit(f"{label}: only {len(done)}/{len(sent)} completed")
    throughput = len(sent) / (max(done.values()) - started)
    ends = sorted(done.values())
    first, last = len(ends) // 10, len(ends) * 9 // 10
    steady = (last - first) / max(ends[last] - ends[first], 1e-6)
    return throughput, steady, [done[i] - sent[i] for i in sent]


def start_bench_workers(label: str, pinned: bool = True
                        ) -> tuple[Settings, list[WorkerProcess]]:
    """The embedded stack plus two local-path workers in a namespace of their own, ready.

    Returns the namespace's settings (for queries and clean-up) and the workers. Worker i
    runs on core i unless ``pinned`` is False. AI is off: the local path, like the pure loop.
    """
    base = Settings()
    Stack(base).up(echo=lambda _: None)
    run = uuid.uuid4().hex[:8]
    env = {**namespace_env(label, run), "IMGSTREAM_API_KEYS": "",
           "IMGSTREAM_AI_ENABLED": "false"}
    cpus = sorted(os.sched_getaffinity(0))
    workers = [start_worker(port, base.logs_dir / f"worker-{label}-{run}-{port}.log",
                            env={**env, "IMGSTREAM_CPU_SET": str(cpus[i % len(cpus)])
                                 if pinned else ""})
               for i, port in enumerate(PORTS)]
    try:
        for worker in workers:
            worker.wait_ready(120)
            worker.wait_log("[^Worker]: Ready", 120)
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return namespaced(base, env), workers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sellers", type=int, default=120)
    parser.add_argument("--megapixel", type=int, default=24)
    parser.add_argument("--unpinned", action="store_true",
                        help="let the OS place the workers (default: worker i on core i, "
                             "as the pure loop's process i)")
    args = parser.parse_args()
    settings, workers = start_bench_workers("bench", pinned=not args.unpinned)
    cpus = sorted(os.sched_getaffinity(0))
    try:
        urls = [w.base_url for w in workers]
        sellers = [Path(p).read_bytes() for p in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))]
        sets = {"1 MP": megapixel_photos(args.megapixel)} if args.megapixel else {}
        if sellers and args.sellers:
            sets = {"seller-size": sellers[: args.sellers], **sets}
        print(f"== {len(workers)} workers on {len(cpus)} cores "
              f"({'unpinned' if args.unpinned else 'worker i pinned to core i'}; the stack "
              f"unpinned), embedded stack; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        worker_pids = {w.process.pid for w in workers}
        for label, photos in sets.items():
            before = cpu_by_group(worker_pids)
            pipeline, steady, _ = run_batch(urls, settings, photos, label.replace(" ", ""))
            spent = cpu_report(before, cpu_by_group(worker_pids), len(photos))
            pure, pure_cpu = pure_rate(photos)
            print(f"{label:12s} pipeline {pipeline:6.1f} images/s, pure compute {pure:6.1f} "
                  f"images/s -> ratio {pipeline / pure:.2f} (target >= 0.85)")
            print(f"{'':12s} steady state (10-90% of completions): {steady:.1f} images/s, "
                  f"{steady / pure:.2f} of the pure loop")
            print(f"{'':12s} CPU ms per photo: pure loop {pure_cpu * 1000:.0f}; pipeline "
                  f"{spent}")
            _, _, latencies = run_batch(urls, settings, photos, label.replace(" ", "") + "-half",
                                     rate=pipeline / 2)
            cut = statistics.quantiles(latencies, n=20)
            print(f"{'':12s} at half load ({pipeline / 2:.1f}/s): upload->completed "
                  f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {cut[18] * 1000:.0f} ms")
    finally:
        for worker in workers:
            worker.stop()
        problems = asyncio.run(drop_namespace(settings))
        if problems:
            print("cleanup:", "; ".join(problems))


if __name__ == "__main__":
    main()
