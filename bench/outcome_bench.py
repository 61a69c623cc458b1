"""Outcome of the local path on seller photos: is what we publish better for a shopper?

    .venv/bin/python bench/outcome_bench.py [--photos DIR] [--count N] [--half report]
        [--generated N] [--first-scene K] [--json] [--sheets DIR] [--processes 2]

Every photo goes through ``imaging.local_path.process_locally`` (the functions the agents
run) with the default profile, clean and degraded (Gaussian blur 2.5, darkening x0.35,
noise 12, 2x downscale). Printed:

* clean photos: tiers before/after, mean score change per sub-score, share published
  changed, with the background replaced, refused by the mask confidence rule and by the
  content gate (with reasons), AI share and AI spend per photo at catalog prices (planned
  steps), paid results not published, CPU of the background step;
* per degradation: share of outputs closer to the original than the degraded upload (the
  JPEG the pipeline is given, decoded: SSIM on luma at the original's size), mean score
  change, share kept;
* with ``--generated N``: rendered scenes whose product mask is known
  (``imaging.samples``): share of background replacements keeping >= 99% of the product's
  pixels and mean IoU of the mask; scenes K..K+N-1 with ``--first-scene K`` (the mask
  rules were tuned on scenes 0-89: report on 90 and up);
* two contact sheets (before | after, steps and reason under each): 24 random background
  replacements and 24 random published results, in the folder printed.

``--half`` splits the photos by the first hex digit of their file name (tune: 0-7,
report: 8-f, all) so thresholds tuned on one half are reported on the other. ``--json``
prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import json
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imaging.decoding import decode_image  # noqa: E402
from imaging.errors import StepDeclined  # noqa: E402
from imaging.local_path import process_locally  # noqa: E402
from imaging.matting import composite  # noqa: E402
from imaging.ops.background import product_alpha  # noqa: E402
from imaging.planning import plan_enhancement  # noqa: E402
from imaging.publishing import (  # noqa: E402
    LEFT_OUT,
    replaced_background,
    steps_as_published,
)
from imaging.samples import (  # noqa: E402
    add_noise,
    blur,
    darken,
    downscale,
    generate_sample_batch,
    render_product_scene_with_mask,
)
from imaging.segmentation import _cache as mask_cache  # noqa: E402
from imaging.similarity import ssim  # noqa: E402
from profiles import load_profile  # noqa: E402
from services.model_catalog import load_catalog  # noqa: E402

SHARED = Path(os.environ.get("IMGSTREAM_SHARED", ROOT.parent / "shared"))
SELLERS = SHARED / "images" / "sellers"
DEGRADATIONS = {
    "blur": lambda b, rng: blur(b, 2.5),
    "dark": lambda b, rng: darken(b, 0.35),
    "noise": lambda b, rng: add_noise(b, rng, 12.0),
    "downscale": lambda b, rng: downscale(b, min(b.shape[:2]) // 2),
}
TIERS = ("poor", "good", "excellent")


def jpeg(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def to_size(bgr: np.ndarray, like: np.ndarray) -> np.ndarray:
    h, w = like.shape[:2]
    if bgr.shape[:2] == (h, w):
        return bgr
    interpolation = cv2.INTER_AREA if bgr.shape[0] > h else cv2.INTER_CUBIC
    return cv2.resize(bgr, (w, h), interpolation=interpolation)


def step_label(steps: list[dict]) -> str:
    parts = []
    for s in steps:
        name = s["operation"] + ("(ai)" if s["model_id"] and s["method"] == "ai" else "")
        if (s["details"] or "").startswith("declined:"):
            name += "(declined)"
        elif (s["details"] or "").startswith(LEFT_OUT):
            name += "(left out)"
        parts.append(name)
    return " ".join(parts)


def background_cpu_ms(original: np.ndarray, rules) -> float | None:
    """CPU of the background step on a cold mask cache (declining costs the mask too)."""
    mask_cache.clear()
    started = time.process_time()
    with contextlib.suppress(StepDeclined):
        composite(original, product_alpha(original, rules), (255, 255, 255))
    return (time.process_time() - started) * 1000


def one_photo(path: str) -> dict:
    profile, catalog = load_profile("default"), load_catalog()
    cv2.setNumThreads(1)
    data = Path(path).read_bytes()
    original = decode_image(data).bgr
    clean = process_locally(data, profile, catalog)
    pub = clean.publication
    plan = plan_enhancement(clean.before.metrics.as_dict(), clean.before.judgement.tier,
                            clean.before.subject, profile, catalog)
    steps = steps_as_published([s.as_dict() for s in clean.steps], pub)
    background = next((s for s in clean.steps if s.operation == "background"), None)
    declined = background is not None and (background.details or "").startswith("declined:")
    ai_usd = plan.estimated_cost_usd
    row = {
        "path": path,
        "tier_before": clean.before.judgement.tier,
        "tier_after": pub.after.judgement.tier,
        "score_change": pub.after.judgement.overall_score - clean.before.judgement.overall_score,
        "sub_change": {k: pub.after.judgement.scores.get(k, 0) - v
                       for k, v in clean.before.judgement.scores.items()},
        "changed": not pub.kept_original and bool(clean.steps),
        "replaced": replaced_background(steps) and not pub.kept_original,
        "background_planned": background is not None,
        "declined": (background.details or "")[len("declined: "):].split(":")[0]
        if declined else None,
        "gate_refused": (pub.reason or "").startswith("gate:"),
        "gate_reasons": [r.split(":")[0] for r in (pub.gate or {}).get("reasons", [])],
        "left_out": list(pub.left_out),
        "kept_reason": pub.reason,
        "ai_usd": ai_usd,
        "ai_steps": [s.operation for s in plan.steps if s.method == "ai"],
        "paid_not_published": ai_usd if ai_usd and pub.kept_original else 0.0,
        "label": step_label(steps),
        "background_ms": background_cpu_ms(original, profile.segmentation)
        if background is not None else None,
        "degradations": {},
    }
    rng = np.random.default_rng(3)
    for name, degrade in DEGRADATIONS.items():
        uploaded = jpeg(degrade(original, rng))
        result = process_locally(uploaded, profile, catalog)
        published = decode_image(result.publication.large_jpeg.data).bgr
        # The upload, not the degraded pixels before their JPEG: its encode loss is not
        # the enhancement's doing.
        out = to_size(published, original)
        inp = to_size(decode_image(uploaded).bgr, original)
        row["degradations"][name] = {
            "closer": float(ssim(out, original) > ssim(inp, original)),
            "score_change": result.publication.after.judgement.overall_score
            - result.before.judgement.overall_score,
            "kept": float(result.publication.kept_original),
        }
    return row


def one_scene(index: int) -> dict:
    profile = load_profile("default")
    cv2.setNumThreads(1)
    rng = np.random.default_rng((11, index))
    products = ("tshirt", "sneaker", "mug", "bottle", "box", "lamp")
    backgrounds = ("wood", "desk", "grey", "sweep", "white")
    product = products[index % len(products)]
    backdrop = backgrounds[(index // len(products)) % len(backgrounds)]
    width, height = [(640, 480), (480, 640), (800, 600)][index % 3]
    scene, truth = render_product_scene_with_mask(rng, product=product, background=backdrop,
                                                  width=width, height=height)
    try:
        alpha = product_alpha(scene, profile.segmentation)
    except StepDeclined as declined:
        return {"scene": f"{product}/{backdrop}", "declined": declined.code}
    product_px = truth > 0.9
    keep = float((alpha[product_px] > 0.5).mean())
    est, gt = alpha > 0.5, truth > 0.5
    iou = float((est & gt).sum() / max(1, (est | gt).sum()))
    return {"scene": f"{product}/{backdrop}", "declined": None, "keep": keep, "iou": iou}


def one_sample(sample) -> dict:
    """Tiers before and after for one photo of the generated demo batch."""
    profile, catalog = load_profile("default"), load_catalog()
    cv2.setNumThreads(1)
    result = process_locally(sample.data, profile, catalog)
    return {"name": sample.name, "before": result.before.judgement.tier,
            "after": result.publication.after.judgement.tier,
            "score_before": result.before.judgement.overall_score,
            "kept": result.publication.reason}


def sheet(rows: list[dict], path: Path, title: str) -> None:
    if not rows:
        print(f"{path.name}: nothing to show ({title})")
        return
    tiles = []
    for row in rows:
        data = Path(row["path"]).read_bytes()
        profile, catalog = load_profile("default"), load_catalog()
        result = process_locally(data, profile, catalog)
        before = decode_image(data).bgr
        after = decode_image(result.publication.large_jpeg.data).bgr
        pair = np.hstack([cv2.resize(before, (240, 320), interpolation=cv2.INTER_AREA),
                          cv2.resize(after, (240, 320), interpolation=cv2.INTER_AREA)])
        caption = np.full((44, 480, 3), 255, np.uint8)
        kept = result.publication.reason or "published the enhancement"
        name = f"{Path(row['path']).stem[:8]} {row['label']}"
        cv2.putText(caption, name[:70], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(caption, kept[:72], (4, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 160), 1, cv2.LINE_AA)
        tiles.append(np.vstack([pair, caption]))
    while len(tiles) % 4:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    header = np.full((30, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                cv2.LINE_AA)
    cv2.imwrite(str(path), np.vstack([header, grid]))


def select(photos: Path, half: str, count: int) -> list[str]:
    files = sorted(glob.glob(str(photos / "**" / "*.jp*g"), recursive=True)
                   + glob.glob(str(photos / "**" / "*.png"), recursive=True))
    if half != "all":
        wanted = set("01234567") if half == "tune" else set("89abcdef")
        files = [f for f in files if Path(f).name[:1].lower() in wanted]
    if count and len(files) > count:
        files = random.Random(7).sample(files, count)
    return sorted(files)


def share(values) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=SELLERS)
    parser.add_argument("--count", type=int, default=60, help="0 = all")
    parser.add_argument("--half", choices=("tune", "report", "all"), default="report")
    parser.add_argument("--generated", type=int, default=30)
    parser.add_argument("--first-scene", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sheets", type=Path, default=None)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    half = args.half if args.photos == SELLERS else "all"
    files = select(args.photos, half, args.count)
    if not files:
        raise SystemExit(f"no photos under {args.photos}")
    sheets = args.sheets or Path(tempfile.mkdtemp(prefix="outcome-sheets-"))
    sheets.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.processes) as pool:
        rows = list(pool.map(one_photo, files))
        scenes = list(pool.map(one_scene, range(args.first_scene,
                                                 args.first_scene + args.generated)))
        samples = list(pool.map(one_sample, generate_sample_batch(7, args.generated)))

    n = len(rows)
    tiers_before = collections.Counter(r["tier_before"] for r in rows)
    tiers_after = collections.Counter(r["tier_after"] for r in rows)
    subs = collections.defaultdict(list)
    for r in rows:
        for k, v in r["sub_change"].items():
            subs[k].append(v)
    declined = collections.Counter(r["declined"] for r in rows if r["declined"])
    gate_reasons = collections.Counter(g for r in rows for g in r["gate_reasons"])
    gate_refused = [r for r in rows if r["gate_refused"]]
    background_ms = [r["background_ms"] for r in rows if r["background_ms"] is not None]
    paid_not_published = [r for r in rows if r["paid_not_published"]]
    degradations = {
        name: {
            "closer_ssim_share": share(r["degradations"][name]["closer"] for r in rows),
            "score_change": round(statistics.mean(r["degradations"][name]["score_change"]
                                                  for r in rows), 2),
            "kept_share": share(r["degradations"][name]["kept"] for r in rows),
        }
        for name in DEGRADATIONS
    }
    replaced = [r for r in rows if r["replaced"]]
    pick = random.Random(1)
    sheet(pick.sample(replaced, min(24, len(replaced))), sheets / "background_replacements.png",
          "24 random background replacements: before | after")
    sheet(pick.sample(rows, min(24, n)), sheets / "published_results.png",
          "24 random published results: before | after")
    replaced_scenes = [s for s in scenes if s["declined"] is None]
    summary = {
        "photos": n,
        "photos_dir": str(args.photos),
        "half": half,
        "ai_usd_per_photo": round(sum(r["ai_usd"] for r in rows) / n, 5),
        "ai_share": share(bool(r["ai_usd"]) for r in rows),
        "ai_steps": dict(collections.Counter(op for r in rows for op in r["ai_steps"])),
        "replaced_share": share(r["replaced"] for r in rows),
        "background_planned_share": share(r["background_planned"] for r in rows),
        "refused_share": share(bool(r["declined"]) for r in rows),
        "refused_reasons": dict(declined),
        "gate_refused_share": round(len(gate_refused) / n, 4),
        "gate_reasons": dict(gate_reasons),
        "gate_left_out_share": share(bool(r["left_out"]) for r in rows),
        "gate_left_out": dict(collections.Counter(op for r in rows for op in r["left_out"])),
        "kept_reasons": dict(collections.Counter(
            (r["kept_reason"] or "").split(":")[0] for r in rows if r["kept_reason"])),
        "tiers_before": {t: tiers_before.get(t, 0) for t in TIERS},
        "tiers_after": {t: tiers_after.get(t, 0) for t in TIERS},
        "score_change": round(statistics.mean(r["score_change"] for r in rows), 2),
        "sub_score_change": {k: round(statistics.mean(v), 2) for k, v in sorted(subs.items())},
        "clean_changed_share": share(r["changed"] for r in rows),
        "paid_not_published": {"photos": len(paid_not_published),
                               "usd": round(sum(r["paid_not_published"]
                                                for r in paid_not_published), 4)},
        "background_step_cpu_ms": round(statistics.mean(background_ms), 1)
        if background_ms else None,
        "degradations": degradations,
        "mask_keep99_share": share(s["keep"] >= 0.99 for s in replaced_scenes),
        "mask_iou_mean": round(statistics.mean(s["iou"] for s in replaced_scenes), 4)
        if replaced_scenes else None,
        "generated": len(scenes),
        "generated_tiers_before": {t: sum(x["before"] == t for x in samples) for t in TIERS},
        "generated_tiers_after": {t: sum(x["after"] == t for x in samples) for t in TIERS},
        "generated_tier_examples": {x["name"]: f"{x['before']} -> {x['after']}"
                                    for x in samples[:12]},
        "generated_refused": dict(collections.Counter(s["declined"] for s in scenes
                                                      if s["declined"])),
        "sheets_dir": str(sheets),
    }
    print(f"{n} photos from {args.photos} ({half} half); {len(scenes)} generated scenes")
    print(f"tiers before {summary['tiers_before']}  after {summary['tiers_after']}; mean "
          f"score change {summary['score_change']:+.1f}")
    print("  by sub-score: " + ", ".join(f"{k} {v:+.1f}"
                                          for k, v in summary["sub_score_change"].items()))
    print(f"published changed {summary['clean_changed_share']:.0%}; background replaced "
          f"{summary['replaced_share']:.0%} (planned {summary['background_planned_share']:.0%}"
          f", refused by the mask rule {summary['refused_share']:.0%}: "
          f"{summary['refused_reasons']}); content gate refused "
          f"{summary['gate_refused_share']:.0%}: {summary['gate_reasons']}; published "
          f"without the steps it blamed {summary['gate_left_out_share']:.0%}: "
          f"{summary['gate_left_out']}")
    print(f"kept originals: {summary['kept_reasons']}")
    print(f"AI: {summary['ai_share']:.0%} of photos, ${summary['ai_usd_per_photo']:.4f} per "
          f"photo ({summary['ai_steps']}); paid but not published: "
          f"{summary['paid_not_published']}")
    print(f"background step CPU (cold mask cache): {summary['background_step_cpu_ms']} ms "
          f"per photo that gets one")
    print(f"{'degradation':12s} {'closer (SSIM)':>14s} {'score change':>13s} {'kept':>6s}")
    for name, d in degradations.items():
        print(f"{name:12s} {d['closer_ssim_share']:13.0%} {d['score_change']:+13.1f} "
              f"{d['kept_share']:6.0%}")
    print(f"generated scenes: {len(replaced_scenes)} replaced, refused "
          f"{summary['generated_refused']}; keep >= 99% of product pixels: "
          f"{summary['mask_keep99_share']:.0%}; mean IoU {summary['mask_iou_mean']}")
    print(f"generated sample batch tiers before {summary['generated_tiers_before']}  after "
          f"{summary['generated_tiers_after']}: " + ", ".join(
              f"{k} {v}" for k, v in summary["generated_tier_examples"].items()))
    print(f"contact sheets: {sheets}")
    if args.json:
        print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
