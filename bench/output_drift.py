"""How far this tree's published renditions are from another checkout's, photo by photo.

    .venv/bin/python bench/output_drift.py --against /path/to/other/checkout [--count 60]

Runs ``imaging.local_path.process_locally`` on the seller photos here and, in a
subprocess, on the other checkout; for every photo whose plan (the same steps) and
outcome (enhanced or original kept) agree, compares the published large and thumb JPEGs:
identical bytes, identical pixels, or their SSIM (luma). Prints the distribution and the
photos whose plan or outcome changed.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parents[1]


def run(count: int) -> dict[str, dict]:
    sys.path.insert(0, str(HERE))
    from bench.pipeline_bench import SELLERS
    from imaging.local_path import process_locally
    from profiles import load_profile
    from services.model_catalog import load_catalog

    profile, catalog = load_profile("default"), load_catalog()
    results = {}
    for path in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))[:count]:
        result = process_locally(Path(path).read_bytes(), profile, catalog)
        pub = result.publication
        jpegs = {r.name: base64.b64encode(r.data).decode() for r in pub.renditions
                 if r.format == "jpeg"}
        results[Path(path).name] = {"steps": [s.operation for s in result.steps],
                                    "kept": pub.kept_original, "jpegs": jpegs}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run(args.count)))
        return
    from imaging.similarity import ssim

    # The other checkout runs its own copy of this script (copied there if missing).
    script = args.against / "bench" / Path(__file__).name
    if not script.exists():
        script.write_text(Path(__file__).read_text())
    out = subprocess.run([sys.executable, str(script), "--json",
                          "--against", ".", "--count", str(args.count)],
                         cwd=args.against, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(args.against.resolve())})
    theirs, ours = json.loads(out.stdout.strip().splitlines()[-1]), run(args.count)
    same_bytes = same_pixels = 0
    scores, changed = [], []
    for name, mine in ours.items():
        other = theirs[name]
        if (mine["steps"], mine["kept"]) != (other["steps"], other["kept"]):
            changed.append(f"{name}: {other['steps']} kept={other['kept']} -> "
                           f"{mine['steps']} kept={mine['kept']}")
            continue
        for rendition, data in mine["jpegs"].items():
            a, b = (base64.b64decode(x) for x in (data, other["jpegs"][rendition]))
            if a == b:
                same_bytes += 1
                continue
            pa, pb = (cv2.imdecode(np.frombuffer(x, np.uint8), cv2.IMREAD_COLOR) for x in (a, b))
            if pa.shape == pb.shape and np.array_equal(pa, pb):
                same_pixels += 1
                continue
            scores.append(ssim(pa, pb) if pa.shape == pb.shape else 0.0)
    compared = same_bytes + same_pixels + len(scores)
    print(f"{len(ours)} photos, {compared} JPEG renditions with the same plan and outcome:")
    print(f"  identical bytes {same_bytes}, identical pixels {same_pixels}, "
          f"different pixels {len(scores)}")
    if scores:
        print(f"  SSIM of the different ones: min {min(scores):.4f}, "
              f"median {float(np.median(scores)):.4f}; below 0.995: "
              f"{sum(s < 0.995 for s in scores)}")
    print(f"  plan or outcome changed: {len(changed)}")
    for line in changed:
        print(f"    {line}")


if __name__ == "__main__":
    main()
