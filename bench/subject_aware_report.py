"""Tier distribution with and without subject-aware scoring (issue 3, item 3).

    .venv/bin/python bench/subject_aware_report.py

Product photos are not natural scenes: whole-frame blur and BRISQUE punish a plain
studio backdrop. This runs the default profile twice - `subject_aware = false` (the seed's
whole-frame metrics) and `true` - over the seller photos and over generated clean
product shots on plain backdrops, and prints the tier distributions and examples.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import os
from pathlib import Path

import cv2
import numpy as np

from imaging.assessment import assess_quality
from imaging.samples import render_product_scene
from profiles import load_profile

SELLERS = Path(os.environ.get("IMGSTREAM_SHARED", Path(__file__).resolve().parents[2] /
                              "shared")) / "images" / "sellers"


def plain_studio_shots(count: int = 30) -> list[tuple[str, bytes]]:
    """Clean, sharp, well-lit product shots on white, grey and sweep backdrops, 1000 px."""
    rng = np.random.default_rng(11)
    shots = []
    for i in range(count):
        product = ("mug", "bottle", "sneaker", "box", "tshirt", "lamp")[i % 6]
        background = ("white", "grey", "sweep")[i % 3]
        bgr = render_product_scene(rng, product=product, background=background,
                                   width=1000, height=1000)
        data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
        shots.append((f"{product}-{background}-{i}", data))
    return shots


def distribution(items: list[tuple[str, bytes]], profile) -> tuple[collections.Counter, dict]:
    tiers: collections.Counter = collections.Counter()
    examples: dict[str, tuple[str, float, list[str]]] = {}
    for name, data in items:
        report = assess_quality(data, profile)
        tier = report.judgement.tier
        tiers[tier] += 1
        examples.setdefault(tier, (name, report.judgement.overall_score,
                                   report.judgement.issues))
    return tiers, examples


def main() -> None:
    base = load_profile("default")
    whole = dataclasses.replace(
        base, assessment=dataclasses.replace(base.assessment, subject_aware=False))
    sets = {"generated plain-backdrop studio shots": plain_studio_shots()}
    seller_files = sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))
    if seller_files:
        sets[f"seller photos ({len(seller_files)})"] = [
            (f"{Path(f).parent.name}/{Path(f).name[:8]}", Path(f).read_bytes())
            for f in seller_files]
    for title, items in sets.items():
        print(f"== {title}")
        for label, profile in (("whole frame (seed)", whole), ("subject-aware", base)):
            tiers, examples = distribution(items, profile)
            total = sum(tiers.values())
            shares = ", ".join(f"{t} {tiers[t]} ({100 * tiers[t] / total:.0f}%)"
                               for t in ("excellent", "good", "poor"))
            print(f"  {label:20s} {shares}")
            for tier, (name, score, issues) in sorted(examples.items()):
                print(f"      e.g. {tier:9s} {name:28s} {score:5.1f} {', '.join(issues)}")


if __name__ == "__main__":
    main()
