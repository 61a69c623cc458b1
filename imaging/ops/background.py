"""Background cleanup: GrabCut the product out and composite it on a plain colour.

Why GrabCut at ``work_side``: it is the only segmentation OpenCV ships without model
weights, and it is expensive (3.8 s at 1 MP full size, see
shared/reference/image-quality.md); on a copy whose long side is 512 px it needs about
0.65 s for a 1 MP input (``bench/ops_bench.py``), and the mask, upscaled and feathered by a
few pixels, hides the resolution loss at the edge. OpenCV seeds GrabCut's GMMs with
k-means on its thread-local RNG, so the RNG is reseeded before every call to keep the
operation deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_SEED = 0x1D5EED


def background(
    bgr: np.ndarray,
    *,
    box: Sequence[float] | None = None,
    color: Sequence[int] = (255, 255, 255),
    work_side: int = 512,
    iterations: int = 5,
    feather: float = 2.0,
) -> np.ndarray:
    """Return ``bgr`` with everything GrabCut calls background replaced by ``color`` (RGB).

    ``box`` is ``[x0, y0, x1, y1]`` in the input's pixels around the product (default: the
    frame inset by 5%); ``feather`` is the Gaussian sigma in pixels of the blended edge.
    """
    height, width = bgr.shape[:2]
    fill = _color_bgr(color)
    if not 64 <= work_side <= 4096:
        raise ValueError(f"work_side must be in [64, 4096], got {work_side}")
    if not 1 <= iterations <= 20:
        raise ValueError(f"iterations must be in [1, 20], got {iterations}")
    if not 0.0 <= feather <= 50.0:
        raise ValueError(f"feather must be in [0, 50], got {feather}")
    x0, y0, x1, y1 = _box(box, width, height)

    scale = min(1.0, work_side / max(height, width))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = bgr if scale == 1.0 else cv2.resize(bgr, (small_w, small_h),
                                                interpolation=cv2.INTER_AREA)
    rect = (
        int(x0 * scale),
        int(y0 * scale),
        max(2, round((x1 - x0) * scale)),
        max(2, round((y1 - y0) * scale)),
    )
    mask = np.zeros((small_h, small_w), np.uint8)
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(_SEED)
    cv2.grabCut(small, mask, rect, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_RECT)
    subject = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 1.0, 0.0)
    alpha = subject.astype(np.float32)
    if scale != 1.0:
        alpha = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=feather, sigmaY=feather)
    alpha = alpha[..., None]
    out = bgr.astype(np.float32) * alpha + np.asarray(fill, np.float32) * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _color_bgr(color: Sequence[int]) -> tuple[int, int, int]:
    values = list(color) if isinstance(color, list | tuple) else []
    if len(values) != 3 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer()
        and 0 <= v <= 255
        for v in values
    ):
        raise ValueError(f"color must be three integers 0..255 (RGB), got {color!r}")
    red, green, blue = (int(v) for v in values)
    return blue, green, red


def _box(box: Sequence[float] | None, width: int, height: int) -> tuple[int, int, int, int]:
    """Validated box clipped to the frame; the 5% inset default when ``box`` is None."""
    if box is None:
        dx, dy = round(width * 0.05), round(height * 0.05)
        return dx, dy, width - dx, height - dy
    values = list(box) if isinstance(box, list | tuple) else []
    if len(values) != 4 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"box must be four numbers [x0, y0, x1, y1], got {box!r}")
    x0, y0 = max(0, round(values[0])), max(0, round(values[1]))
    x1, y1 = min(width, round(values[2])), min(height, round(values[3]))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError(f"box {box!r} leaves less than 4x4 px inside a {width}x{height} image")
    return x0, y0, x1, y1

