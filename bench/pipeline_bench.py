"""End-to-end throughput and latency of the local path on the embedded stack.

    .venv/bin/python bench/pipeline_bench.py [--sellers 120] [--megapixel 120] [--rounds 3]
                                             [--workers 2] [--idle-seconds 5]
                                             [--pinned | --stack-core]

Starts two workers in a namespace of their own on the embedded stack (``stack up`` first),
uploads a batch through the HTTP API as fast as the workers take it, and times upload of
the first photo to completion of the last (MySQL). The same photos go through the pure
compute loop (``imaging.local_path.process_locally``: the functions the agents run) in
one warm process per core, each taking the next photo when done, just before and just
after each pipeline batch: the machine is shared and its speed drifts, so each round
compares the pipeline with the mean of the two pure runs around it. Printed per round
and as the median of ``--rounds``, for seller-size and 1 MP photos: both rates; the CPU
milliseconds per photo of the pure loop and of each process of the pipeline (each worker,
SeaweedFS, broker, MariaDB, the uploading client: where the difference goes); the
object-store requests and Kafka messages per photo (the workers' own counters); p50/p95
upload->completed latency at half the measured throughput. The stack's CPU with the
workers up and idle (``--idle-seconds``) is measured first: the broker's share of a
batch is mostly the workers' fetch polling, paid by the second; each set's stack CPU per
photo is printed with the part that polling at that rate explains. The last line sums it up for
scripts: ``pipeline: sellers X/s, 1MP Y/s; pure: sellers A/s, 1MP B/s; worker/pure CPU
R; stack CPU S ms/photo`` (stack: object store + broker + database). Workers float
over the cores (the OS balances their image threads);
``--pinned`` pins worker i to core i instead. ``--stack-core`` is a diagnostic: the stack
and the uploading client get the first core, the workers and the pure loop the others, as
when the stack runs on machines of its own. Before the first round of each set, a few
photos go through the workers to warm them, as the pure loop's processes are warmed.
Everything the run created is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Iterator
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
PORTS = (16366, 16367, 16368)


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


def _pure_init(cpus: set[int] | None = None) -> None:
    """Pool start-up (imports, profile, catalog) is not compute: the workers are warm too."""
    global _pure_setup
    if cpus:
        os.sched_setaffinity(0, cpus)
    cv2.setNumThreads(1)
    _pure_setup = load_profile("default"), load_catalog()


def _pure_one(data: bytes) -> float:
    """CPU seconds of one photo through the local path."""
    assert _pure_setup is not None
    profile, catalog = _pure_setup
    started = time.process_time()
    process_locally(data, profile, catalog)
    return time.process_time() - started


def pure_rate(photos: list[bytes], cpus: set[int] | None = None) -> tuple[float, float]:
    """(images/s, CPU seconds per photo) of the pure loop: one warm process per core (of
    ``cpus``, default all this process may use).

    Each process takes the next photo when it is done with one (as the workers' image
    threads do), so no core waits while the other still has a queue.
    """
    count = len(cpus or os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(count, initializer=_pure_init,
                                                   initargs=(cpus,)) as pool:
        pool.map(_pure_one, photos[:count], chunksize=1)  # warm: lazy models, caches
        started = time.perf_counter()
        cpu = sum(pool.imap_unordered(_pure_one, photos, chunksize=1))
        elapsed = time.perf_counter() - started
    return len(photos) / elapsed, cpu / len(photos)


# Which process a CPU second belongs to, by its command line (first match wins).
PROCESS_GROUPS = (("workers", "streams.app worker"), ("SeaweedFS", "weed"),
                  ("broker (tansu)", "tansu"), ("MariaDB", "mariadbd"), ("moto", "moto"),
                  ("Bedrock emulator", "emulator bedrock"))


def _processes() -> Iterator[tuple[int, str]]:
    """(pid, command line) of every process (Linux /proc)."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry), command


def _cpu_seconds(stat_path: str) -> float | None:
    """User + system CPU seconds from a /proc stat file (None: gone)."""
    try:
        with open(stat_path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stack_group(command: str) -> str:
    return next((g for g, needle in PROCESS_GROUPS[1:] if needle in command), "")


def cpu_by_group(worker_pids: set[int]) -> dict[str, float]:
    """CPU seconds used so far by the pipeline's processes, grouped; each worker's own
    figure under ``worker <pid>`` too."""
    totals: dict[str, float] = {}
    for pid, command in _processes():
        if pid == os.getpid():
            group = "bench client (uploads)"
        elif pid in worker_pids:
            group = "workers"
        else:
            group = _stack_group(command)
        seconds = _cpu_seconds(f"/proc/{pid}/stat") if group else None
        if seconds is None:
            continue
        totals[group] = totals.get(group, 0.0) + seconds
        if pid in worker_pids:
            totals[f"worker {pid}"] = seconds
    return totals


def thread_cpu(worker_pids: set[int]) -> dict[tuple[int, int], float]:
    """CPU seconds used so far by each thread of the workers, by (pid, tid)."""
    threads = {}
    for pid in worker_pids:
        with contextlib.suppress(OSError):
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                seconds = _cpu_seconds(f"/proc/{pid}/task/{tid}/stat")
                if seconds is not None:
                    threads[(pid, tid)] = seconds
    return threads


def thread_report(before: dict[tuple[int, int], float], after: dict[tuple[int, int], float],
                  per: float) -> str:
    """CPU ms per photo of each worker thread (1 ms or more), largest first. "main" is a
    worker's event loop; the largest others are its image threads, then aiokafka's
    consumer thread and obstore's runtime."""
    used = sorted(((after[k] - before.get(k, 0.0)) * 1000 / per, k) for k in after)
    return ", ".join(f"{'main ' if pid == tid else ''}{ms:.0f}"
                     for ms, (pid, tid) in reversed(used) if ms >= 1)


def stack_pids() -> list[int]:
    """The embedded stack's processes (broker, store, database, stand-ins)."""
    return [pid for pid, command in _processes() if _stack_group(command)]


def pin_stack(cpus: set[int]) -> dict[int, set[int]]:
    """Move the stack's processes (all their threads) to ``cpus``; returns what to restore."""
    before = {}
    for pid in stack_pids():
        try:
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                before[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cpus)
        except OSError:
            continue
    return before


def restore_affinity(saved: dict[int, set[int]]) -> None:
    for tid, cpus in saved.items():
        with contextlib.suppress(OSError):  # gone since
            os.sched_setaffinity(tid, cpus)


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


def start_bench_workers(label: str, pinned: bool = False, cpus: set[int] | None = None,
                        count: int = 2) -> tuple[Settings, list[WorkerProcess]]:
    """The embedded stack plus two local-path workers in a namespace of their own, ready.

    Returns the namespace's settings (for queries and clean-up) and the workers. Worker i
    runs on core i if ``pinned``; both run on ``cpus`` if given. AI is off: the local
    path, like the pure loop.
    """
    base = Settings()
    Stack(base).up(echo=lambda _: None)
    run = uuid.uuid4().hex[:8]
    # No keys at all (an open API), whatever the caller's shell sets: any key closes it.
    env = {**namespace_env(label, run), "IMGSTREAM_API_KEYS": "", "IMGSTREAM_ADMIN_KEYS": "",
           "IMGSTREAM_AI_ENABLED": "false"}
    cores = sorted(os.sched_getaffinity(0))
    placement = [str(cores[i % len(cores)]) if pinned else
                 ",".join(map(str, sorted(cpus))) if cpus else "" for i in range(count)]
    workers = [start_worker(port, base.logs_dir / f"worker-{label}-{run}-{port}.log",
                            env={**env, "IMGSTREAM_CPU_SET": placement[i]})
               for i, port in enumerate(PORTS[:count])]
    try:
        for worker in workers:
            worker.wait_ready(120)
            worker.wait_log("[^Worker]: Ready", 120)
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return namespaced(base, env), workers


def cpu_report(before: dict[str, float], after: dict[str, float], per: float) -> str:
    """CPU ms per ``per`` (photos, or seconds) by process group, largest first, and their
    total; each worker's share is shown beside the workers' sum, not added again."""
    used = {g: (after.get(g, 0.0) - before.get(g, 0.0)) * 1000 / per for g in after}
    shares = [f"{used[g]:.0f}" for g in sorted(used) if g.startswith("worker ")]
    groups = {g: ms for g, ms in used.items() if not g.startswith("worker ")}
    parts = [f"{g} {ms:.0f}" + (f" ({' + '.join(shares)})" if g == "workers" else "")
             for g, ms in sorted(groups.items(), key=lambda i: -i[1]) if ms >= 1]
    return ", ".join(parts) + f"; total {sum(groups.values()):.0f}"


STACK_GROUPS = ("SeaweedFS", "broker (tansu)", "MariaDB")


def worker_counters(urls: list[str]) -> dict[str, float]:
    """Object-store requests and Kafka messages so far, summed over the workers."""
    import requests

    names = {"imgstream_object_requests_total": "s3 requests",
             "imgstream_events_emitted_total": "messages produced",
             "imgstream_events_processed_total": "messages consumed"}
    totals = dict.fromkeys(names.values(), 0.0)
    for url in urls:
        for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in names and not line.startswith("#"):
                totals[names[name]] += float(line.rsplit(" ", 1)[1])
    return totals


def idle_stack_rate(worker_pids: set[int], seconds: float) -> float:
    """The stack's CPU ms per second while the workers are up and idle: their fetch
    polling (docs/decisions/0004), which a batch pays by the second, not by the photo."""
    before = cpu_by_group(worker_pids)
    started = time.monotonic()
    time.sleep(seconds)  # measuring an interval, not waiting for a condition
    after = cpu_by_group(worker_pids)
    used = sum(after.get(g, 0.0) - before.get(g, 0.0) for g in STACK_GROUPS)
    return used * 1000 / (time.monotonic() - started)


def measure_round(urls: list[str], settings: Settings, photos: list[bytes], label: str,
                  worker_pids: set[int], pure_cpus: set[int] | None = None,
                  idle_ms_per_s: float = 0.0) -> dict[str, Any]:
    """One pipeline batch between two runs of the pure loop (their rates are averaged):
    rates, CPU per photo by process group, requests and messages per photo."""
    pure_before, cpu_before = pure_rate(photos, pure_cpus)
    before, threads_before = cpu_by_group(worker_pids), thread_cpu(worker_pids)
    counters_before = worker_counters(urls)
    pipeline, steady, _ = run_batch(urls, settings, photos, label)
    after = cpu_by_group(worker_pids)
    seconds = len(photos) / pipeline
    counters = {k: (v - counters_before[k]) / len(photos)
                for k, v in worker_counters(urls).items()}
    used = {g: (after.get(g, 0.0) - before.get(g, 0.0)) * 1000 / len(photos) for g in after}
    spent = (cpu_report(before, after, len(photos))
             + f"\n{'':12s}   worker threads: "
             + thread_report(threads_before, thread_cpu(worker_pids), len(photos)))
    pure_after, cpu_after = pure_rate(photos, pure_cpus)
    return {"pipeline": pipeline, "pure": (pure_before + pure_after) / 2, "steady": steady,
            "spent": spent, "pure_cpu_ms": (cpu_before + cpu_after) / 2 * 1000,
            "worker_cpu_ms": used.get("workers", 0.0),
            "stack_cpu_ms": sum(used.get(g, 0.0) for g in STACK_GROUPS),
            "stack_idle_ms": idle_ms_per_s * seconds / len(photos), **counters}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sellers", type=int, default=120)
    parser.add_argument("--megapixel", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, choices=(1, 2, 3), default=2,
                        help="worker processes (scaling out: compare 1 with 2)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="how long to measure the stack's CPU with the workers idle")
    parser.add_argument("--pinned", action="store_true",
                        help="pin worker i to core i, as process i of the pure loop "
                             "(default: the OS places the workers' threads)")
    parser.add_argument("--stack-core", action="store_true",
                        help="diagnostic: the stack and the uploading client on the first "
                             "core, workers and the pure loop on the others (as in "
                             "production, where the stack has machines of its own)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    worker_cpus = set(cpus[1:]) if args.stack_core else None
    if args.stack_core and len(cpus) < 2:
        raise SystemExit("--stack-core needs at least two cores")
    settings, workers = start_bench_workers("bench", pinned=args.pinned, cpus=worker_cpus,
                                            count=args.workers)
    saved = {}
    if args.stack_core:
        saved = pin_stack({cpus[0]})
        os.sched_setaffinity(0, {cpus[0]})
    try:
        urls = [w.base_url for w in workers]
        sellers = [Path(p).read_bytes() for p in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))]
        sets = {"1 MP": megapixel_photos(args.megapixel)} if args.megapixel else {}
        if sellers and args.sellers:
            sets = {"seller-size": sellers[: args.sellers], **sets}
        placement = ("worker i pinned to core i" if args.pinned else
                     f"workers on cores {sorted(worker_cpus)}, the stack and client on core "
                     f"{cpus[0]}" if args.stack_core else "placed by the OS")
        print(f"== {len(workers)} workers on {len(cpus)} cores ({placement}), embedded stack; "
              f"fetch wait {settings.fetch_max_wait_ms} ms; {args.rounds} rounds; "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        worker_pids = {w.process.pid for w in workers}
        idle = idle_stack_rate(worker_pids, args.idle_seconds)
        print(f"idle: the stack spends {idle:.0f} ms of CPU per second with the workers up "
              f"and idle (their fetch polling)")
        results: dict[str, dict[str, float]] = {}
        for label, photos in sets.items():
            tag = label.replace(" ", "")
            # Warm the workers as the pure loop warms its processes (lazy models, caches).
            run_batch(urls, settings, photos[: 2 * len(workers)], tag + "-warm")
            rounds = []
            for r in range(args.rounds):
                m = measure_round(urls, settings, photos, f"{tag}-r{r}", worker_pids,
                                  worker_cpus, idle)
                rounds.append(m)
                print(f"{label:12s} round {r + 1}: pipeline {m['pipeline']:5.2f} photos/s "
                      f"(steady state {m['steady']:5.2f}), pure loop {m['pure']:5.2f}")
                print(f"{'':12s}   CPU ms per photo: pure loop {m['pure_cpu_ms']:.0f}; "
                      f"pipeline {m['spent']}")
                print(f"{'':12s}   per photo: {m['s3 requests']:.1f} object-store requests, "
                      f"{m['messages produced']:.1f} Kafka messages produced, "
                      f"{m['messages consumed']:.1f} consumed")
            median = {k: statistics.median(m[k] for m in rounds)
                      for k in ("pipeline", "pure", "pure_cpu_ms", "worker_cpu_ms",
                                "stack_cpu_ms", "stack_idle_ms")}
            rate = median["pipeline"]
            _, _, latencies = run_batch(urls, settings, photos, tag + "-half", rate=rate / 2)
            cut = statistics.quantiles(latencies, n=20)
            median["p95_ms"] = cut[18] * 1000
            print(f"{label:12s} median of {args.rounds}: pipeline {rate:.2f} photos/s, pure "
                  f"{median['pure']:.2f}; worker CPU {median['worker_cpu_ms']:.0f} ms/photo "
                  f"vs pure {median['pure_cpu_ms']:.0f} "
                  f"({median['worker_cpu_ms'] / median['pure_cpu_ms']:.2f}x); stack "
                  f"{median['stack_cpu_ms']:.0f} ms/photo, of which ~"
                  f"{median['stack_idle_ms']:.0f} is polling at the idle rate")
            print(f"{'':12s} at half load ({rate / 2:.1f}/s): upload->completed "
                  f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
                  f"p95 {median['p95_ms']:.0f} ms")
            results[label] = median
        seller, mp = results.get("seller-size"), results.get("1 MP")

        def fmt(m, key, spec=".1f"):
            return format(m[key], spec) if m else "-"

        ratio = statistics.mean(m["worker_cpu_ms"] / m["pure_cpu_ms"] for m in results.values())
        stack = statistics.mean(m["stack_cpu_ms"] for m in results.values())
        print(f"pipeline: sellers {fmt(seller, 'pipeline')}/s, 1MP {fmt(mp, 'pipeline')}/s; "
              f"pure: sellers {fmt(seller, 'pure')}/s, 1MP {fmt(mp, 'pure')}/s; "
              f"worker/pure CPU {ratio:.2f}; stack CPU {stack:.0f} ms/photo")
    finally:
        restore_affinity(saved)
        for worker in workers:
            worker.stop()
        problems = asyncio.run(drop_namespace(settings))
        if problems:
            print("cleanup:", "; ".join(problems))


if __name__ == "__main__":
    main()
