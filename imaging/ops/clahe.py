"""Local contrast: CLAHE on the L channel of LAB.

Why L only: equalising B, G and R separately shifts hues; on L the colours keep their
chroma. The clip limit bounds how much noise the flat tiles (backgrounds) can gain.
About 15 ms per megapixel on one core (shared/reference/image-quality.md).
"""

from __future__ import annotations

import cv2
import numpy as np


def contrast(bgr: np.ndarray, *, clip_limit: float = 2.0, tile_grid: int = 8) -> np.ndarray:
    """Return ``bgr`` with CLAHE (``clip_limit``, ``tile_grid`` x ``tile_grid`` tiles) on L."""
    if not 0.1 <= clip_limit <= 40.0:
        raise ValueError(f"clip_limit must be in [0.1, 40], got {clip_limit}")
    if not 1 <= tile_grid <= 64:
        raise ValueError(f"tile_grid must be in [1, 64], got {tile_grid}")
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tile_grid, tile_grid))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
