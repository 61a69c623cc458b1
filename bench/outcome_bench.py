"""Outcome quality of the local path on degraded seller photos (issue 4).

    .venv/bin/python bench/outcome_bench.py [--count 60]

For each seller photo and each degradation (Gaussian blur, darkening, noise, 2x
downscale) the degraded copy goes through the local path (``imaging.local_path``: the
same functions the agents run). Printed per degradation: the share of published outputs
closer to the original than the degraded input (SSIM and PSNR on luma, output resized to
the original's size), the mean overall-score change, and how often the original was kept.
Clean originals also go through: the count that got worse must be 0.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
from pathlib import Path

import cv2
import numpy as np

from imaging.decoding import decode_image
from imaging.local_path import process_locally
from imaging.samples import add_noise, blur, darken, downscale
from imaging.similarity import psnr, ssim
from profiles import load_profile
from services.model_catalog import load_catalog

SELLERS = Path(os.environ.get("IMGSTREAM_SHARED", Path(__file__).resolve().parents[2] /
                              "shared")) / "images" / "sellers"


def jpeg(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def to_size(bgr: np.ndarray, like: np.ndarray) -> np.ndarray:
    h, w = like.shape[:2]
    if bgr.shape[:2] == (h, w):
        return bgr
    interpolation = cv2.INTER_AREA if bgr.shape[0] > h else cv2.INTER_CUBIC
    return cv2.resize(bgr, (w, h), interpolation=interpolation)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    files = sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))
    if not files:
        raise SystemExit(f"no seller photos under {SELLERS}")
    files = files[:: max(1, len(files) // args.count)][: args.count]
    profile, catalog = load_profile("default"), load_catalog()
    rng = np.random.default_rng(3)
    degradations = {
        "gaussian blur s=2.5": lambda b: blur(b, 2.5),
        "darkening x0.35": lambda b: darken(b, 0.35),
        "noise s=12": lambda b: add_noise(b, rng, 12.0),
        "2x downscale": lambda b: downscale(b, min(b.shape[:2]) // 2),
    }
    worse_clean = 0
    clean_changes = []
    rows: dict[str, dict[str, list[float]]] = {k: {"ssim": [], "psnr": [], "delta": [],
                                                   "kept": []} for k in degradations}
    for path in files:
        original_bytes = Path(path).read_bytes()
        original = decode_image(original_bytes).bgr
        clean = process_locally(original_bytes, profile, catalog)
        change = (clean.publication.after.judgement.overall_score
                  - clean.before.judgement.overall_score)
        clean_changes.append(change)
        worse_clean += change < 0
        for name, degrade in degradations.items():
            degraded = degrade(original)
            result = process_locally(jpeg(degraded), profile, catalog)
            published = decode_image(result.publication.large_jpeg.data).bgr
            out, inp = to_size(published, original), to_size(degraded, original)
            row = rows[name]
            row["ssim"].append(float(ssim(out, original) > ssim(inp, original)))
            row["psnr"].append(float(psnr(out, original) > psnr(inp, original)))
            row["delta"].append(result.publication.after.judgement.overall_score
                                - result.before.judgement.overall_score)
            row["kept"].append(float(result.publication.kept_original))
    print(f"{len(files)} seller photos from {SELLERS}")
    print(f"{'degradation':22s} {'closer (SSIM)':>14s} {'closer (PSNR)':>14s} "
          f"{'mean score change':>18s} {'original kept':>14s}")
    for name, row in rows.items():
        print(f"{name:22s} {100 * statistics.mean(row['ssim']):13.0f}% "
              f"{100 * statistics.mean(row['psnr']):13.0f}% "
              f"{statistics.mean(row['delta']):+18.1f} {100 * statistics.mean(row['kept']):13.0f}%")
    print(f"clean originals: mean score change {statistics.mean(clean_changes):+.1f}, "
          f"got worse: {worse_clean} (must be 0)")


if __name__ == "__main__":
    main()
