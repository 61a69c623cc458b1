"""Where the pure local path's CPU goes, per step, for seller photos and 1 MP photos.

    .venv/bin/python bench/step_costs.py [--count 60] [--against /path/to/other/checkout]

Runs ``imaging.local_path.process_locally`` (what assess, route, enhance_local and
finalize compute) over seller photos (~0.2 MP), generated 1 MP photos (1000x1000) and a few
generated 1.5 MP (1400x1050) and 12 MP (4000x3000) photos, in one process pinned to one
core, under cProfile, and prints for each step: ms per call, calls per photo, and ms per
photo (their product), plus the CPU ms per photo of the whole path. ``--against`` runs the
same measurement on another checkout (e.g. a worktree of an earlier commit) in a
subprocess and prints both side by side, so a change to the path is measured against what
it replaced on the same machine, in the same minute. Profiling adds a little to
Python-heavy steps; compare ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# (label, file suffix, function): the steps worth a line; cumulative time of each.
STEPS = [
    ("whole path", "imaging/local_path.py", "process_locally"),
    ("assess (all)", "imaging/assessment.py", "assess_quality"),
    ("  product mask (all)", "imaging/segmentation.py", "find_product_mask"),
    ("    salient-object model", "imaging/segmentation.py", "model_mask"),
    ("  BRISQUE", "imaging/brisque.py", "brisque_score"),
    ("enhancement steps", "imaging/enhancement.py", "apply_plan"),
    ("  background", "imaging/ops/background.py", "background"),
    ("    second look at faint parts", "imaging/segmentation.py", "second_look"),
    ("  upscale", "imaging/ops/upscale.py", "upscale"),
    ("content gate", "imaging/publishing.py", "gate_result"),
    ("renditions (all)", "imaging/encoding.py", "render_outputs"),
    ("  WebP encode", "PIL/WebPImagePlugin.py", "_save"),
    ("decode (all)", "imaging/decoding.py", "decode_image"),
    ("intermediate encode", "imaging/enhancement.py", "encode_intermediate"),
]


def large_photos(count: int, width: int = 4000, height: int = 3000) -> list[bytes]:
    """Camera-size JPEGs of the generated scenes (12 MP unless told)."""
    import cv2
    import numpy as np

    from imaging.samples import render_product_scene

    rng = np.random.default_rng(12)
    combos = [("mug", "wood"), ("sneaker", "desk"), ("box", "white")]
    return [cv2.imencode(".jpg", render_product_scene(rng, product=p, background=b,
                                                      width=width, height=height),
                         [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            for p, b in (combos[i % len(combos)] for i in range(count))]


def photo_sets(count: int) -> dict[str, list[bytes]]:
    sys.path.insert(len(sys.path), str(HERE))  # after the checkout being measured
    from bench.pipeline_bench import SELLERS, megapixel_photos

    sellers = sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))[:count]
    return {"sellers": [Path(p).read_bytes() for p in sellers],
            "1 MP": megapixel_photos(count),
            # between the assessment's working size and the large rendition's
            "1.5 MP": large_photos(max(6, count // 4), 1400, 1050),
            "12 MP": large_photos(max(3, count // 10))}


def measure(count: int) -> dict[str, dict]:
    """{set: {"cpu_ms": per photo, "steps": {label: [ms per call, calls per photo]}}}."""
    import cv2

    from imaging.local_path import process_locally
    from profiles import load_profile
    from services.model_catalog import load_catalog

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    profile, catalog = load_profile("default"), load_catalog()
    results = {}
    for name, photos in photo_sets(count).items():
        process_locally(photos[0], profile, catalog)  # warm: the model session, caches
        profiler = cProfile.Profile()
        cpu = time.process_time()
        profiler.enable()
        for data in photos:
            process_locally(data, profile, catalog)
        profiler.disable()
        cpu_ms = (time.process_time() - cpu) * 1000 / len(photos)
        stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, ct, ...)
        steps = {}
        for label, suffix, function in STEPS:
            calls = seconds = 0.0
            for (file, _, fn), (_, ncalls, _, cumulative, _) in stats.items():
                if fn == function and file.endswith(suffix):
                    calls += ncalls
                    seconds += cumulative
            if calls:
                steps[label] = [seconds * 1000 / calls, calls / len(photos)]
        results[name] = {"cpu_ms": cpu_ms, "photos": len(photos), "steps": steps}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout to measure the same way, side by side")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.count)))
        return
    runs = {"this tree": measure(args.count)}
    if args.against:
        # The other checkout runs this script (the same photo sets and steps) on its code.
        script = args.against / "bench" / f".{Path(__file__).stem}-this-tree.py"
        script.write_text(Path(__file__).read_text())
        try:
            out = subprocess.run(
                [sys.executable, str(script), "--json", "--count", str(args.count)],
                cwd=args.against, capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": str(args.against.resolve())})
        finally:
            script.unlink()
        runs = {str(args.against): json.loads(out.stdout.strip().splitlines()[-1]), **runs}
    names = list(runs)
    for photo_set in ("sellers", "1 MP", "1.5 MP", "12 MP"):
        print(f"\n{photo_set}: ms per call x calls per photo = ms per photo (one core)")
        header = "".join(f"  {n[-28:]:>30}" for n in names)
        print(f"  {'step':<26}{header}")
        for label, _, _ in STEPS:
            cells = []
            for n in names:
                ms, per = runs[n][photo_set]["steps"].get(label, [0.0, 0.0])
                cells.append(f"{ms:7.1f} x {per:4.2f} = {ms * per:6.1f}" if per else
                             f"{'-':>22}")
            print(f"  {label:<26}" + "".join(f"  {c:>30}" for c in cells))
        totals = "".join(f"  {runs[n][photo_set]['cpu_ms']:>27.1f} ms" for n in names)
        print(f"  {'CPU per photo (profiled)':<26}{totals}")
    summary = ", ".join(f"{n}: sellers {runs[n]['sellers']['cpu_ms']:.0f} ms, "
                        f"1MP {runs[n]['1 MP']['cpu_ms']:.0f} ms, "
                        f"1.5MP {runs[n]['1.5 MP']['cpu_ms']:.0f} ms, "
                        f"12MP {runs[n]['12 MP']['cpu_ms']:.0f} ms" for n in names)
    print(f"\nsteps: {summary}")


if __name__ == "__main__":
    main()
