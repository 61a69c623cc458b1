"""Local enhancement speed: ms per operation at 1 MP on one core, plus the denoise comparison.

    .venv/bin/python bench/ops_bench.py [--repeat 5] [--denoise]
    .venv/bin/python bench/ops_bench.py --steps [--count 60] [--against OTHER_CHECKOUT]

The process is pinned to one CPU and OpenCV to one thread, like one stream worker slot.
Inputs are 1000x1000 synthetic product photos degraded the way each operation expects
(blurred, noisy, flat, dark, cluttered; upscale gets a 500x500 photo and doubles it to 1 MP).
``--denoise`` also prints the table behind the choice in ``imaging/ops/denoise.py``: PSNR/SSIM
(luma) against the clean scene at noise sigma 5, 10 and 15 for each candidate, and its speed.
Figures move about 30% run to run on a shared machine: compare ratios.
``--steps`` prints instead the per-step table of the whole local path (ms per call, calls
per photo, ms per photo) for seller, 1 MP and 12 MP photos, optionally side by side with
another checkout: ``bench/step_costs.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imaging import samples
from imaging.errors import StepDeclined
from imaging.ops import apply_operation
from imaging.ops.denoise import guided_filter
from imaging.similarity import psnr, ssim

SIDE = 1000


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in ms, after one warm-up call."""
    fn()
    samples_ms = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples_ms.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples_ms)


def scene(seed: int, product: str, background: str, side: int = SIDE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return samples.render_product_scene(rng, product=product, background=background,
                                        width=side, height=side)


def bench_operations(repeat: int) -> None:
    clean = scene(1, "mug", "grey")
    flat = np.clip(clean.astype(np.float32) * 0.35 + 83.0, 0, 255).astype(np.uint8)
    cases: list[tuple[str, np.ndarray, dict[str, object]]] = [
        ("sharpen", samples.blur(clean, 2.0), {}),
        ("denoise", samples.add_noise(clean, np.random.default_rng(2), 10.0), {"sigma": 10.0}),
        ("denoise (sigma estimated)", samples.add_noise(clean, np.random.default_rng(2), 10.0),
         {}),
        ("contrast", flat, {}),
        ("brightness", samples.darken(clean, 0.3), {}),
        # A scene whose mask the rules trust: a declined cut would time only the refusal.
        ("background", scene(5, "box", "wood"), {}),
        ("upscale (500->1000)", scene(4, "lamp", "desk", 500), {"short_side": 1000}),
    ]
    print(f"ms per operation, {SIDE}x{SIDE} px, one core, median of {repeat}")
    for label, image, params in cases:
        op = label.split(" ")[0]
        try:
            ms = timed(lambda op=op, image=image, params=params:
                       apply_operation(op, image, params), repeat)
        except StepDeclined as declined:
            print(f"  {label:<28} declined ({declined.code}): not timed")
            continue
        print(f"  {label:<28} {ms:8.1f}")


def _guided_gray(bgr: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided filter with the gray image as guide (one variance, a/b per channel)."""
    image = bgr.astype(np.float32)
    guide = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_g = box(guide)
    var_g = box(guide * guide) - mean_g * mean_g
    mean_p = box(image)
    cov = box(guide[..., None] * image) - mean_g[..., None] * mean_p
    a = cov / (var_g + eps)[..., None]
    b = mean_p - a * mean_g[..., None]
    out = box(a) * guide[..., None] + box(b)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _half_bilateral(bgr: np.ndarray, sigma: float) -> np.ndarray:
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    smooth = cv2.bilateralFilter(small, 9, 7 * sigma / 2, 3)
    return cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR)


DENOISERS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "bilateral d=9, sigmaColor 2s, space 4": lambda im, s: cv2.bilateralFilter(im, 9, 2 * s, 4),
    "bilateral d=9, sigmaColor 7s, space 3": lambda im, s: cv2.bilateralFilter(im, 9, 7 * s, 3),
    "bilateral d=5, sigmaColor 4s, space 3": lambda im, s: cv2.bilateralFilter(im, 5, 4 * s, 3),
    "bilateral d=9 on half-size copy": _half_bilateral,
    "edgePreservingFilter recursive s=15": lambda im, s: cv2.edgePreservingFilter(
        im, flags=cv2.RECURS_FILTER, sigma_s=15, sigma_r=min(1.0, 4 * s / 255)),
    "guided, gray guide, r=2, eps=(3s)^2": lambda im, s: _guided_gray(im, 2, (3 * s) ** 2),
    "guided, self, r=2, eps=(3s)^2 [chosen]": lambda im, s: guided_filter(
        im, radius=2, eps=(3 * s) ** 2),
    "gaussian sigma 1.2 (no edges kept)": lambda im, s: cv2.GaussianBlur(im, (0, 0), 1.2),
}


def bench_denoise(repeat: int) -> None:
    cleans = [scene(3, p, b) for p, b in
              [("mug", "white"), ("box", "wood"), ("lamp", "desk"), ("sneaker", "sweep")]]
    levels = (5.0, 10.0, 15.0)
    noisy = {s: [samples.add_noise(c, np.random.default_rng(int(s)), s) for c in cleans]
             for s in levels}

    def scores(outputs: dict[float, list[np.ndarray]]) -> str:
        cells = []
        for s in levels:
            p = statistics.mean(psnr(o, c) for o, c in zip(outputs[s], cleans, strict=True))
            q = statistics.mean(ssim(o, c) for o, c in zip(outputs[s], cleans, strict=True))
            cells.append(f"{p:5.2f}/{q:.3f}")
        return "  ".join(cells)

    print("\ndenoise: PSNR dB / SSIM (luma) vs clean, 4 scenes 1000x1000; ms at 1 MP, one core")
    print(f"  {'method':<40} {'sigma 5':<12}  {'sigma 10':<12}  {'sigma 15':<12}  ms")
    print(f"  {'noisy input':<40} {scores(noisy)}")
    for name, fn in DENOISERS.items():
        outputs = {s: [fn(n, s) for n in noisy[s]] for s in levels}
        ms = timed(lambda fn=fn: fn(noisy[10.0][0], 10.0), repeat)
        print(f"  {name:<40} {scores(outputs)}  {ms:6.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--denoise", action="store_true", help="also run the denoise comparison")
    parser.add_argument("--steps", action="store_true",
                        help="the per-step table of the local path (bench/step_costs.py)")
    args, rest = parser.parse_known_args()
    if args.steps:
        from bench import step_costs

        sys.argv = [str(Path(step_costs.__file__)), *rest]
        step_costs.main()
        return
    pin_one_core()
    bench_operations(args.repeat)
    if args.denoise:
        bench_denoise(max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
