"""Assessment speed: ms per stage at 1 MP, images/s on one and two cores, vs pyiqa.

    .venv/bin/python bench/assess_bench.py [--seconds 3]

Prints figures and ratios measured in this run (the machine is shared and noisy; compare
ratios, not absolute numbers across runs). One-core figures pin the process to one CPU
and OpenCV to one thread; two-core figures run the agent's thread pool on two CPUs.
pyiqa's BRISQUE is measured on the same images when the `pyiqa` extra is installed.
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from imaging.assessment import assess_quality
from imaging.brisque import brisque_score
from imaging.decoding import decode_image
from imaging.metrics import (
    background_region,
    edge_density,
    exposure_deviation,
    laplacian_variance,
    noise_sigma,
)
from imaging.samples import render_product_scene
from imaging.subject import find_subject
from profiles import load_profile

SELLERS = Path(os.environ.get("IMGSTREAM_SHARED", Path(__file__).resolve().parents[2] /
                              "shared")) / "images" / "sellers"


def one_megapixel_photos() -> list[bytes]:
    rng = np.random.default_rng(5)
    photos = []
    for product, background in [("mug", "white"), ("sneaker", "sweep"), ("box", "wood"),
                                ("lamp", "desk"), ("bottle", "grey"), ("tshirt", "wood")]:
        bgr = render_product_scene(rng, product=product, background=background,
                                   width=1000, height=1000)
        photos.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes())
    return photos


def timed(fn, *args, repeat: int = 5) -> float:
    """Median wall time of fn(*args) in ms."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(*args)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def stage_breakdown(photos: list[bytes], profile) -> dict[str, float]:
    rows: dict[str, list[float]] = {}
    for data in photos:
        decoded = decode_image(data, profile.assessment.working_max_side)
        bgr = decoded.bgr
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        subject = find_subject(bgr)
        crop = bgr[subject.y0:subject.y1, subject.x0:subject.x1]
        gcrop = gray[subject.y0:subject.y1, subject.x0:subject.x1]
        background = background_region(subject, gray.shape)
        steps = {
            "decode": lambda d=data: decode_image(d, profile.assessment.working_max_side),
            "gray": lambda b=bgr: cv2.cvtColor(b, cv2.COLOR_BGR2GRAY),
            "subject": lambda b=bgr: find_subject(b),
            "blur": lambda g=gcrop: laplacian_variance(g),
            "exposure": lambda g=gcrop, full=gray: (
                g.mean(), g.std(), exposure_deviation(float(g.mean()), full,
                                                      profile.scores.brightness)),
            "noise": lambda g=gray: noise_sigma(g),
            "brisque": lambda c=crop: brisque_score(c),
            "background": lambda g=gray, r=background: edge_density(
                g, r, profile.background.canny_low, profile.background.canny_high),
            "full assessment": lambda d=data: assess_quality(d, profile),
        }
        for name, fn in steps.items():
            rows.setdefault(name, []).append(timed(fn))
    return {k: statistics.mean(v) for k, v in rows.items()}


def throughput(photos: list[bytes], profile, threads: int, seconds: float) -> float:
    done = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        while time.perf_counter() - started < seconds:
            list(pool.map(lambda d: assess_quality(d, profile), photos))
            done += len(photos)
    return done / (time.perf_counter() - started)


def _process_loop(args: tuple[list[bytes], float, int]) -> int:
    photos, seconds, cpu = args
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    profile = load_profile("default")
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for data in photos:
            assess_quality(data, profile)
        done += len(photos)
    return done


def throughput_processes(photos: list[bytes], cpus: set[int], seconds: float) -> float:
    """One process per core, each looping over the photos (how workers scale out)."""
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(len(cpus)) as pool:
        done = sum(pool.map(_process_loop, [(photos, seconds, cpu) for cpu in sorted(cpus)]))
    return done / (time.perf_counter() - started)


def pyiqa_ms_per_image(images: list[np.ndarray]) -> float | None:
    from imaging.brisque_pyiqa import brisque_score as pyiqa_brisque

    try:
        pyiqa_brisque(images[0])  # imports torch and loads the weights, outside the timing
    except ImportError:
        return None
    return statistics.mean(timed(pyiqa_brisque, im, repeat=3) for im in images)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    profile = load_profile("default")
    photos = one_megapixel_photos()
    sellers = [Path(p).read_bytes() for p in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))]
    all_cpus = os.sched_getaffinity(0)

    os.sched_setaffinity(0, {min(all_cpus)})
    cv2.setNumThreads(1)
    print(f"== one core, 1 MP photos ({len(photos)} generated product scenes, JPEG q92)")
    stages = stage_breakdown(photos, profile)
    for name, ms in stages.items():
        print(f"  {name:16s} {ms:7.1f} ms")
    megapixels = statistics.mean(
        (lambda b: b.shape[0] * b.shape[1] / 1e6)(decode_image(p, 1024).bgr) for p in photos)
    brisque_per_mp = stages["brisque"] / megapixels  # brisque runs on the subject crop
    full_brisque = statistics.mean(
        timed(brisque_score, decode_image(p, 1024).bgr) for p in photos) / megapixels
    print(f"  BRISQUE on the whole frame: {full_brisque:.1f} ms/MP "
          f"(on the subject crop: {brisque_per_mp:.1f} ms per photo-MP)")
    one_core = throughput(photos, profile, 1, args.seconds)
    print(f"  throughput: {one_core:.1f} images/s")

    os.sched_setaffinity(0, all_cpus)
    cv2.setNumThreads(len(all_cpus))
    two_core = throughput(photos, profile, len(all_cpus), args.seconds)
    two_proc = throughput_processes(photos, all_cpus, args.seconds)
    print(f"== {len(all_cpus)} cores, 1 MP: {two_core:.1f} images/s with {len(all_cpus)} threads "
          f"({two_core / one_core:.2f}x one core), {two_proc:.1f} images/s with "
          f"{len(all_cpus)} processes ({two_proc / one_core:.2f}x)")

    if sellers:
        os.sched_setaffinity(0, {min(all_cpus)})
        cv2.setNumThreads(1)
        s1 = throughput(sellers, profile, 1, args.seconds)
        os.sched_setaffinity(0, all_cpus)
        cv2.setNumThreads(len(all_cpus))
        s2 = throughput(sellers, profile, len(all_cpus), args.seconds)
        s2p = throughput_processes(sellers, all_cpus, args.seconds)
        print(f"== seller photos ({len(sellers)}, ~0.2 MP): {s1:.0f} images/s on one core; "
              f"on {len(all_cpus)} cores {s2:.0f} images/s with threads, {s2p:.0f} images/s "
              f"with processes (target >= 150)")
    else:
        print(f"== seller photos: {SELLERS} not found, skipped")

    os.sched_setaffinity(0, {min(all_cpus)})
    decoded = [decode_image(p, 1024).bgr for p in photos]
    pyiqa_ms = pyiqa_ms_per_image(decoded)
    if pyiqa_ms is None:
        print("== pyiqa: not installed (pip install -e '.[pyiqa]'), ratio not measured")
    else:
        ours = stages["full assessment"]
        print(f"== pyiqa BRISQUE alone, one core, same 1 MP photos: {pyiqa_ms:.0f} ms/image; "
              f"our whole assessment {ours:.0f} ms -> {pyiqa_ms / ours:.1f}x faster "
              f"(target >= 4x); our BRISQUE alone {full_brisque * megapixels:.0f} ms "
              f"-> {pyiqa_ms / (full_brisque * megapixels):.1f}x")


if __name__ == "__main__":
    main()
