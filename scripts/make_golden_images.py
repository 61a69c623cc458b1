"""Render the golden images of the local enhancement operations.

Why: a change to an operation (or to OpenCV) that alters its output visibly must fail a test,
while bit-level noise across platforms must not. So each operation's expected output on a
small, fixed input is stored as PNG, and ``tests/unit/imaging/ops`` compares a fresh run with
an SSIM floor (0.98, as thumbor does) instead of byte equality. The inputs are stored too, so
the tests do not depend on ``imaging.samples`` rendering the same scenes forever.

Usage::

    .venv/bin/python scripts/make_golden_images.py            # rewrite everything
    .venv/bin/python scripts/make_golden_images.py --check    # report SSIM vs stored outputs

Writes ``tests/unit/imaging/ops/golden/``: ``clean.png`` (the undegraded scene),
``<op>-input.png``, ``<op>-expected.png`` and ``manifest.json`` (op, params, file names).
Re-run it only when an operation changes on purpose, and review the new images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imaging import samples  # noqa: E402
from imaging.ops import apply_operation  # noqa: E402
from imaging.similarity import ssim  # noqa: E402

GOLDEN = ROOT / "tests" / "unit" / "imaging" / "ops" / "golden"
WIDTH, HEIGHT = 160, 120
SEED = 20240611


def _flatten(bgr: np.ndarray, keep: float = 0.35) -> np.ndarray:
    """Squeeze tones toward mid-gray: a hazy, low-contrast shot for CLAHE."""
    out = bgr.astype(np.float32) * keep + 128.0 * (1.0 - keep)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def build_cases() -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The clean scene and, per operation, its degraded input and params."""
    clean = samples.render_product_scene(
        np.random.default_rng(SEED), product="mug", background="grey", width=WIDTH, height=HEIGHT
    )
    cluttered = samples.render_product_scene(
        np.random.default_rng(SEED + 1),
        product="box",
        background="wood",
        width=WIDTH,
        height=HEIGHT,
    )
    noisy = samples.add_noise(clean, np.random.default_rng(SEED + 2), sigma=12.0)
    cases = [
        ("sharpen", samples.blur(clean, sigma=1.5), {"amount": 0.8}),
        ("denoise", noisy, {"sigma": 12.0}),
        ("contrast", _flatten(clean), {}),
        ("brightness", samples.darken(clean, exposure=0.3), {}),
        ("background", cluttered, {"color": [240, 240, 240], "box": [38, 40, 126, 119]}),
        ("upscale", cv2.resize(clean, (100, 75), interpolation=cv2.INTER_AREA),
         {"short_side": 225}),
    ]
    return clean, [{"op": op, "input": image, "params": params} for op, image, params in cases]


def _write_png(path: Path, bgr: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def write(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    clean, cases = build_cases()
    _write_png(out_dir / "clean.png", clean)
    manifest = []
    for case in cases:
        op = case["op"]
        expected = apply_operation(op, case["input"], case["params"])
        _write_png(out_dir / f"{op}-input.png", case["input"])
        _write_png(out_dir / f"{op}-expected.png", expected)
        manifest.append({"op": op, "params": case["params"], "input": f"{op}-input.png",
                         "expected": f"{op}-expected.png", "clean": "clean.png"})
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"wrote {len(manifest)} cases to {out_dir} ({total / 1024:.0f} KiB)")


def check(out_dir: Path) -> None:
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for case in manifest:
        bgr = cv2.imread(str(out_dir / case["input"]), cv2.IMREAD_COLOR)
        expected = cv2.imread(str(out_dir / case["expected"]), cv2.IMREAD_COLOR)
        got = apply_operation(case["op"], bgr, case["params"])
        print(f"{case['op']:<11} ssim {ssim(got, expected):.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    if args.check:
        check(args.out)
    else:
        write(args.out)


if __name__ == "__main__":
    main()
