"""Every benchmark under bench/ still runs and prints what the docs quote from it.

A bench is only read when someone needs its figures; these runs (tiny counts, no timing
asserted) make a bench that a code change broke fail here instead of in front of them.
The pipeline bench needs the embedded stack and is an e2e test.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_bench(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_ops_bench_times_every_operation():
    out = run_bench("ops_bench.py", "--repeat", "1")
    for op in ("sharpen", "denoise", "contrast", "brightness", "background", "upscale"):
        # A declined step would time its refusal, not its work.
        assert re.search(rf"^  {op}\b.*\s\d+\.\d$", out, re.MULTILINE), out


def test_step_costs_prints_every_size():
    out = run_bench("step_costs.py", "--count", "2")
    assert re.search(r"^steps: this tree: sellers \d+ ms, 1MP \d+ ms, 1\.5MP \d+ ms, "
                     r"12MP \d+ ms$", out, re.MULTILINE), out


def test_outcome_bench_reports_tiers_and_scenes():
    out = run_bench("outcome_bench.py", "--count", "3", "--generated", "2", "--processes", "1")
    assert "tiers before" in out and "generated scenes:" in out, out


def test_output_drift_against_this_tree_finds_no_drift():
    out = run_bench("output_drift.py", "--against", str(ROOT), "--count", "2")
    match = re.search(r"identical bytes (\d+), identical pixels (\d+), different pixels (\d+)",
                      out)
    assert match and int(match[1]) > 0 and int(match[3]) == 0, out


def test_brisque_bench_measures_ours():
    out = run_bench("brisque_bench.py", "--repeat", "1", "--sellers", "2")
    assert re.search(r"^seller photos\s+2\s+\S+\s+\d+\.\d", out, re.MULTILINE), out


@pytest.mark.e2e
def test_pipeline_bench_ends_with_its_summary_line(stack):
    out = run_bench("pipeline_bench.py", "--sellers", "3", "--megapixel", "3", "--rounds", "1",
                    "--workers", "1", timeout=600)
    last = out.strip().splitlines()[-1]
    number = r"(\d+(?:\.\d+)?)"
    match = re.fullmatch(rf"pipeline: sellers {number}/s, 1MP {number}/s; pure: sellers "
                         rf"{number}/s, 1MP {number}/s; worker/pure CPU {number}; "
                         rf"stack CPU {number} ms/photo", last)
    assert match, last
    assert all(float(value) > 0 for value in match.groups()), last
    assert "object-store requests" in out and "p95" in out, out
