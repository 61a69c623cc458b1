"""Where the product is: a fast subject box for product photos.

Product photos are not natural scenes: a product on a plain (white, grey, coloured)
backdrop is the norm, and scoring the backdrop as if it were content is wrong (a flat
white area has no detail, so whole-frame blur and BRISQUE call a crisp studio shot poor).
We model the backdrop from the frame's border, mark pixels that differ from it in Lab
colour, and keep the large components. When the border is itself busy (a cluttered
table) the colour model cannot separate anything and we fall back to the central region,
where sellers put the product.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_ANALYSIS_SIDE = 192
_BORDER = 0.04           # border ring width, share of each side
_MAX_JUMP = 15.0         # Lab step between neighbouring border samples: an object edge
_MAX_TEXTURE = 12.0      # Lab distance (p90) of border pixels from their side's profile
_MIN_THRESHOLD = 12.0    # Lab distance that always counts as "different from backdrop"
_CENTER_BOX = 0.15       # fallback: drop this share on each side
_MIN_AREA, _MAX_AREA = 0.02, 0.97


@dataclass(frozen=True)
class Subject:
    """Subject box in the analysed image's pixels, and how it was found."""

    x0: int
    y0: int
    x1: int
    y1: int
    method: str          # backdrop | center | full_frame
    mask: np.ndarray | None  # foreground mask (image size) when method == "backdrop"
    segmentation: dict | None = None  # imaging.segmentation's verdict, when it was asked

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1

    def resized(self, frame: tuple[int, int], to: tuple[int, int]) -> Subject:
        """The same subject on a copy of its ``frame`` (width, height) resized ``to``."""
        if frame == to:
            return self
        fx, fy = to[0] / frame[0], to[1] / frame[1]
        mask = None
        if self.mask is not None:
            mask = cv2.resize(self.mask.astype(np.uint8), to,
                              interpolation=cv2.INTER_NEAREST).astype(bool)
        return Subject(round(self.x0 * fx), round(self.y0 * fy), min(to[0], round(self.x1 * fx)),
                       min(to[1], round(self.y1 * fy)), self.method, mask, self.segmentation)

    def fraction(self, width: int, height: int) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0) / float(width * height)


def find_subject(bgr: np.ndarray, padding: float = 0.04) -> Subject:
    """Locate the product in a BGR image; never fails (falls back to the centre)."""
    height, width = bgr.shape[:2]
    factor = min(1.0, _ANALYSIS_SIDE / max(height, width))
    small = cv2.resize(bgr, (max(8, round(width * factor)), max(8, round(height * factor))),
                       interpolation=cv2.INTER_AREA) if factor < 1 else bgr
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    ring = max(2, round(min(h, w) * _BORDER))
    # Each side's backdrop as a smooth 1-D profile, so studio sweeps and light falloff
    # (gradients) still count as a plain backdrop; texture and clutter do not.
    sides = {
        "left": lab[:, :ring].mean(axis=1), "right": lab[:, -ring:].mean(axis=1),
        "top": lab[:ring].mean(axis=0), "bottom": lab[-ring:].mean(axis=0),
    }
    smooth = {k: _smooth_profile(v) for k, v in sides.items()}
    rings = {"left": lab[:, :ring], "right": lab[:, -ring:],
             "top": lab[:ring].transpose(1, 0, 2), "bottom": lab[-ring:].transpose(1, 0, 2)}
    spread = np.concatenate([np.linalg.norm(rings[k] - smooth[k][:, None], axis=2).ravel()
                             for k in sides])
    jump = max(float(np.abs(np.diff(p, axis=0)).max()) for p in smooth.values())
    texture = float(np.percentile(spread, 90))
    if jump > _MAX_JUMP or texture > _MAX_TEXTURE:
        return _center(width, height)  # objects or texture along the border: no backdrop

    # Backdrop at (y, x): the middle two of the four side profiles through that pixel.
    left, right = smooth["left"][:, None], smooth["right"][:, None]
    top, bottom = smooth["top"][None, :], smooth["bottom"][None, :]
    total = (left + right) + (top + bottom)
    highest = np.maximum(np.maximum(left, right), np.maximum(top, bottom))
    lowest = np.minimum(np.minimum(left, right), np.minimum(top, bottom))
    backdrop = (total - highest - lowest) * 0.5
    threshold = max(_MIN_THRESHOLD, 3.0 * texture)
    distance = np.linalg.norm(lab - backdrop, axis=2)
    foreground = (distance > threshold).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_CLOSE, kernel)
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 0.005 * h * w]
    if not keep:
        return _center(width, height)
    mask_small = np.isin(labels, keep)
    area = mask_small.mean()
    if area < _MIN_AREA:
        return _center(width, height)
    if area > _MAX_AREA:
        return Subject(0, 0, width, height, "full_frame", None)
    ys, xs = np.nonzero(mask_small)
    pad_x, pad_y = padding * w, padding * h
    x0 = max(0.0, xs.min() - pad_x) / w
    x1 = min(float(w), xs.max() + 1 + pad_x) / w
    y0 = max(0.0, ys.min() - pad_y) / h
    y1 = min(float(h), ys.max() + 1 + pad_y) / h
    mask = cv2.resize(mask_small.astype(np.uint8), (width, height),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    return Subject(round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height),
                   "backdrop", mask)


def subject_from_mask(mask: np.ndarray, width: int, height: int, padding: float,
                      segmentation: dict) -> Subject:
    """The subject of a product mask found by :mod:`imaging.segmentation` (any size)."""
    binary = mask > 0.5
    if binary.shape != (height, width):
        binary = cv2.resize(binary.astype(np.uint8), (width, height),
                            interpolation=cv2.INTER_NEAREST).astype(bool)
    ys, xs = np.nonzero(binary)
    pad_x, pad_y = padding * width, padding * height
    x0, x1 = max(0, round(xs.min() - pad_x)), min(width, round(xs.max() + 1 + pad_x))
    y0, y1 = max(0, round(ys.min() - pad_y)), min(height, round(ys.max() + 1 + pad_y))
    return Subject(x0, y0, x1, y1, "backdrop", binary, segmentation)


def _smooth_profile(profile: np.ndarray, size: int = 9) -> np.ndarray:
    """Median-filter a (n, 3) colour profile along n: keeps gradients, drops objects."""
    n = profile.shape[0]
    k = min(size, n if n % 2 else n - 1)
    if k < 3:
        return profile
    padded = np.pad(profile, ((k // 2, k // 2), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=0)
    return np.median(windows, axis=-1).astype(np.float32)


def _center(width: int, height: int) -> Subject:
    dx, dy = round(width * _CENTER_BOX), round(height * _CENTER_BOX)
    return Subject(dx, dy, width - dx, height - dy, "center", None)
