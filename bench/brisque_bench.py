"""BRISQUE speed on one core: ours (imaging.brisque) vs pyiqa's, ms per megapixel, same images.

    .venv/bin/python bench/brisque_bench.py [--cpu 0] [--repeat 5] [--sellers 20]

The process pins itself to one CPU (like ``taskset -c 0``) and OpenCV and torch to one
thread. Two sets: 1 MP synthetic product photos, and seller photos at their upload size
(about 0.2 MP; from the shared folder next to the repository or ``IMGSTREAM_SHARED``, else
synthetic photos at that size). pyiqa is timed on the same arrays when the ``pyiqa`` extra
is installed. The machine is shared and noisy: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from imaging.brisque import brisque_score
from imaging.samples import render_product_scene

SCENES = [("mug", "white"), ("sneaker", "sweep"), ("box", "wood"),
          ("lamp", "desk"), ("bottle", "grey"), ("tshirt", "wood")]


def _shared_sellers() -> Path:
    env = os.environ.get("IMGSTREAM_SHARED")
    shared = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return shared / "images" / "sellers"


def synthetic(width: int, height: int) -> list[np.ndarray]:
    """Rendered product photos, passed through JPEG q92 like an upload (and laid out as one)."""
    rng = np.random.default_rng(5)
    photos = []
    for product, background in SCENES:
        bgr = render_product_scene(rng, product=product, background=background,
                                   width=width, height=height)
        jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
        photos.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    return photos


def seller_photos(count: int) -> tuple[str, list[np.ndarray]]:
    photos = sorted(_shared_sellers().glob("*/*.jpg"))
    if not photos:
        return "synthetic 400x533", synthetic(400, 533)
    picked = photos[:: max(1, len(photos) // count)][:count]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in picked]
    return "seller photos", [im for im in images if im is not None]


def ms_per_mp(score: Callable[[np.ndarray], float], images: list[np.ndarray], repeat: int) -> float:
    """Total of each image's median time over total megapixels."""
    score(images[0])  # warm caches and lazy loads outside the timing
    total_ms = 0.0
    for image in images:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            score(image)
            runs.append((time.perf_counter() - started) * 1000)
        total_ms += statistics.median(runs)
    return total_ms / sum(im.shape[0] * im.shape[1] / 1e6 for im in images)


def load_pyiqa() -> Callable[[np.ndarray], float] | None:
    try:
        import torch

        from imaging.brisque_pyiqa import brisque_score as pyiqa_score
    except ImportError as exc:
        print(f"pyiqa not measured: {exc}")
        return None
    torch.set_num_threads(1)
    return pyiqa_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sellers", type=int, default=20, help="seller photos to time")
    args = parser.parse_args()

    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    pyiqa_score = load_pyiqa()

    label, sellers = seller_photos(args.sellers)
    sets = [("1 MP synthetic", synthetic(1000, 1000)), (label, sellers)]
    print(f"one core (cpu {args.cpu}), median of {args.repeat} runs per image")
    print(f"{'set':<20} {'images':>6} {'MP/img':>7} {'ours ms/MP':>11} {'pyiqa ms/MP':>12} "
          f"{'pyiqa/ours':>10}")
    for name, images in sets:
        mp = statistics.mean(im.shape[0] * im.shape[1] / 1e6 for im in images)
        ours = ms_per_mp(brisque_score, images, args.repeat)
        if pyiqa_score is None:
            print(f"{name:<20} {len(images):>6} {mp:>7.2f} {ours:>11.1f} {'-':>12} {'-':>10}")
            continue
        theirs = ms_per_mp(pyiqa_score, images, max(1, args.repeat // 2))
        print(f"{name:<20} {len(images):>6} {mp:>7.2f} {ours:>11.1f} {theirs:>12.1f} "
              f"{theirs / ours:>9.1f}x")


if __name__ == "__main__":
    main()
