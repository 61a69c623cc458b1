"""What the embedded stack and two idle workers cost when nothing happens.

    .venv/bin/python bench/idle_cost.py [--seconds 20]

Idle CPU is paid during every batch too (polling, heartbeats, housekeeping): at ~6 photos/s
each 100 ms of idle CPU per second is ~17 ms per photo in ``pipeline_bench.py``'s figures.
Starts two workers as that bench does, waits until they are ready, and prints the CPU
milliseconds per second of each process group while nothing is uploaded.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from pipeline_bench import cpu_by_group, cpu_report, start_bench_workers  # same folder

from infra.namespace import drop_namespace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings, workers = start_bench_workers("idle")
    try:
        time.sleep(5)  # past start-up work
        pids = {w.process.pid for w in workers}
        before = cpu_by_group(pids)
        time.sleep(args.seconds)
        after = cpu_by_group(pids)
        print(f"idle CPU, ms per second, over {args.seconds:.0f} s: "
              + cpu_report(before, after, args.seconds))
    finally:
        for worker in workers:
            worker.stop()
        asyncio.run(drop_namespace(settings))


if __name__ == "__main__":
    main()
