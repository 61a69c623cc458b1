"""Effect of the bounded working resolution on scores and time (issue 3, item 5).

    .venv/bin/python bench/working_resolution_report.py

Large photos are assessed on a copy whose longest side is the profile's
`working_max_side` (1024 px by default; JPEGs decoded at 1/2, 1/4 or 1/8 scale). This
renders large product photos (about 3000x2400 px, sharp, blurred, noisy), assesses each
at full resolution and at the working resolution, and prints the metric deltas, tier
agreement and the speed-up.
"""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np

from imaging.assessment import assess_quality
from imaging.samples import add_noise, blur, render_product_scene
from profiles import load_profile


def large_photos() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(21)
    photos = []
    for product, background in [("mug", "white"), ("box", "wood"), ("sneaker", "sweep"),
                                ("lamp", "desk")]:
        bgr = render_product_scene(rng, product=product, background=background,
                                   width=3000, height=2400)
        for variant, image in [("sharp", bgr), ("blurred", blur(bgr, 6.0)),
                               ("noisy", add_noise(bgr, rng, 12.0))]:
            data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
            photos.append((f"{product}-{background}-{variant}", data))
    return photos


def main() -> None:
    bounded = load_profile("default")
    full = dataclasses.replace(
        bounded, assessment=dataclasses.replace(bounded.assessment, working_max_side=100_000))
    print(f"{'photo':26s} {'tier full/bounded':18s} {'overall':>13s} {'blur':>15s} "
          f"{'brisque':>13s} {'noise':>11s} {'ms full/bounded':>16s}")
    agree = 0
    photos = large_photos()
    speedups = []
    for name, data in photos:
        t0 = time.perf_counter()
        a = assess_quality(data, full)
        t1 = time.perf_counter()
        b = assess_quality(data, bounded)
        t2 = time.perf_counter()
        agree += a.judgement.tier == b.judgement.tier
        speedups.append((t1 - t0) / (t2 - t1))
        print(f"{name:26s} {a.judgement.tier + '/' + b.judgement.tier:18s} "
              f"{a.judgement.overall_score:6.1f}/{b.judgement.overall_score:5.1f} "
              f"{a.metrics.blur:7.1f}/{b.metrics.blur:7.1f} "
              f"{a.metrics.brisque:6.1f}/{b.metrics.brisque:5.1f} "
              f"{a.metrics.noise:5.1f}/{b.metrics.noise:4.1f} "
              f"{(t1 - t0) * 1000:7.0f}/{(t2 - t1) * 1000:6.0f}")
    print(f"tiers agree on {agree}/{len(photos)}; bounded is {np.median(speedups):.1f}x faster "
          "(median)")


if __name__ == "__main__":
    main()
