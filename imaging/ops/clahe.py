"""Local contrast: CLAHE on the L channel of LAB, kept off the texture of plain areas.

Why L only: equalising B, G and R separately shifts hues; on L the colours keep their
chroma. The clip limit bounds how much noise the flat tiles (backgrounds) can gain.

Why the smooth-area guard: in a plain wall, sheet or backdrop a tile's histogram is narrow,
so even a clipped equalisation multiplies its faint texture, noise and JPEG blocks (the
background turns mottled, and more so on blurred photos). Where the input's local standard
deviation of L is below ``smooth_std`` the output keeps the input's own texture and only
takes CLAHE's change averaged over that plain area (its brightness shift, smooth at tile
scale); where it is above 2.4 x ``smooth_std`` the output is plain CLAHE; in between the two
blend smoothly. The weight is eroded first, so pixels beside an edge count as plain when their
window is. ``smooth_std=0`` gives plain CLAHE everywhere.
About 15 ms per megapixel for CLAHE alone on one core (shared/reference/image-quality.md);
the guard about doubles that.
"""

from __future__ import annotations

import cv2
import numpy as np

_WINDOW = 9  # local standard deviation window, pixels
_TEXTURED = 2.4  # full CLAHE from this multiple of smooth_std up
_ERODE = 9
_FEATHER = 5
_LOW_PASS = 0.4  # sigma of the averaged change, as a fraction of a tile side
_LOW_PASS_GRID = 4.0  # that sigma in pixels of the reduced grid it is computed on


def contrast(
    bgr: np.ndarray, *, clip_limit: float = 2.0, tile_grid: int = 8, smooth_std: float = 2.0
) -> np.ndarray:
    """Return ``bgr`` with CLAHE (``clip_limit``, ``tile_grid`` x ``tile_grid`` tiles) on L.

    Areas whose local standard deviation of L is below ``smooth_std`` levels keep their input
    texture (0: CLAHE everywhere).
    """
    if not 0.1 <= clip_limit <= 40.0:
        raise ValueError(f"clip_limit must be in [0.1, 40], got {clip_limit}")
    if not 1 <= tile_grid <= 64:
        raise ValueError(f"tile_grid must be in [1, 64], got {tile_grid}")
    if not 0.0 <= smooth_std <= 50.0:
        raise ValueError(f"smooth_std must be in [0, 50], got {smooth_std}")
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tile_grid, tile_grid))
    lightness = np.ascontiguousarray(lab[..., 0])
    equalised = clahe.apply(lightness)
    if smooth_std > 0.0:
        equalised = _keep_smooth_texture(lightness, equalised, smooth_std, tile_grid)
    lab[..., 0] = equalised
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def _textured_weight(src: np.ndarray, smooth_std: float) -> np.ndarray:
    """0 where the local standard deviation of L is below ``smooth_std``, 1 from
    ``_TEXTURED`` x that up (smoothstep between), then eroded and feathered.
    In-place arithmetic: every fresh full-size array costs page faults."""
    mean = cv2.blur(src, (_WINDOW, _WINDOW))
    std = cv2.multiply(src, src)
    cv2.blur(std, (_WINDOW, _WINDOW), dst=std)
    cv2.subtract(std, cv2.multiply(mean, mean, dst=mean), dst=std)
    cv2.sqrt(cv2.max(std, 0.0, dst=std), dst=std)
    ramp = std
    np.subtract(ramp, smooth_std, out=ramp)
    np.multiply(ramp, 1.0 / ((_TEXTURED - 1.0) * smooth_std), out=ramp)
    np.clip(ramp, 0.0, 1.0, out=ramp)
    scratch = cv2.multiply(ramp, ramp, dst=mean)
    np.multiply(ramp, -2.0, out=ramp)
    np.add(ramp, 3.0, out=ramp)
    cv2.multiply(scratch, ramp, dst=ramp)  # smoothstep: r² (3 - 2 r)
    cv2.erode(ramp, np.ones((_ERODE, _ERODE), np.uint8), dst=scratch)
    return cv2.blur(scratch, (_FEATHER, _FEATHER), dst=ramp)


def _keep_smooth_texture(lightness: np.ndarray, equalised: np.ndarray, smooth_std: float,
                         tile_grid: int) -> np.ndarray:
    """L + w * change + (1 - w) * (change averaged over nearby plain pixels)."""
    src = lightness.astype(np.float32)
    change = equalised.astype(np.float32)
    cv2.subtract(change, src, dst=change)
    weight = _textured_weight(src, smooth_std)
    h, w = src.shape
    sigma = _LOW_PASS * (h + w) / (2.0 * tile_grid)
    shift = _plain_average(change, weight, sigma, product=src)
    cv2.subtract(change, shift, dst=change)
    cv2.multiply(change, weight, dst=change)
    cv2.add(change, shift, dst=change)
    return cv2.add(lightness, change, dtype=cv2.CV_8U)  # rounds and saturates


def _plain_average(change: np.ndarray, weight: np.ndarray, sigma: float,
                   product: np.ndarray) -> np.ndarray:
    """Gaussian average of ``change`` weighted by ``1 - weight`` (normalised convolution),
    computed on a grid reduced so the sigma is a few pixels there, then interpolated back.
    ``product`` is scratch space of the same shape."""
    h, w = change.shape
    factor = max(1.0, sigma / _LOW_PASS_GRID)
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    cv2.multiply(change, weight, dst=product)
    num = cv2.resize(change, size, interpolation=cv2.INTER_AREA)
    num -= cv2.resize(product, size, interpolation=cv2.INTER_AREA)
    den = 1.0 - cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    small_sigma = sigma / factor
    num = cv2.GaussianBlur(num, (0, 0), small_sigma)
    den = cv2.GaussianBlur(den, (0, 0), small_sigma)
    return cv2.resize(num / np.maximum(den, 1e-3), (w, h), interpolation=cv2.INTER_LINEAR)
