"""Unsharp mask on luminance only.

Why luminance: sharpening B, G and R separately puts coloured halos on edges. Adding the same
luma detail to all three channels changes Y by exactly that amount and leaves Cb/Cr (which
depend on R-Y and B-Y) untouched, without a lossy colour-space round trip. The threshold keeps
flat areas (studio backgrounds, skin of the product) from having their noise amplified.
About 7 ms per megapixel on one core (``bench/ops_bench.py``).
"""

from __future__ import annotations

import cv2
import numpy as np


def sharpen(
    bgr: np.ndarray, *, amount: float = 0.6, radius: float = 1.2, threshold: float = 2.0
) -> np.ndarray:
    """Return ``bgr`` with luma detail (Y minus its Gaussian blur) boosted by ``amount``.

    ``radius`` is the Gaussian sigma in pixels; only pixels whose detail exceeds
    ``threshold`` gray levels change.
    """
    if not 0.0 <= amount <= 5.0:
        raise ValueError(f"amount must be in [0, 5], got {amount}")
    if not 0.1 <= radius <= 50.0:
        raise ValueError(f"radius must be in [0.1, 50], got {radius}")
    if not 0.0 <= threshold <= 255.0:
        raise ValueError(f"threshold must be in [0, 255], got {threshold}")
    if amount == 0.0:
        return bgr.copy()
    luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    detail = cv2.subtract(luma, cv2.GaussianBlur(luma, (0, 0), sigmaX=radius, sigmaY=radius))
    delta = np.where(np.abs(detail) > threshold, detail * np.float32(amount), np.float32(0))
    # per-channel saturating add: the same result as float math, 3x faster than numpy here
    return cv2.merge([cv2.add(c, delta, dtype=cv2.CV_8U) for c in cv2.split(bgr)])
