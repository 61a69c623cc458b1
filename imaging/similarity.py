"""Full-reference similarity: SSIM (Wang et al. 2004) and PSNR, without scipy or torch.

Why these conventions: golden-image tests and the denoise comparison need numbers that agree
with what IQA papers and pyiqa publish, so they were calibrated against the published
``ssim_vs_ref`` / ``psnr_vs_ref`` columns of ``shared/calibration/brisque/reference.csv``
(5 distorted/reference pairs, 512x384):

- SSIM: pyiqa's ``ssim`` (``test_y_channel=True``) uses its default ``color_space="yiq"``, i.e.
  the BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` *without* the studio-range +16 offset,
  rounded to integers like a uint8 image, an 11x11 Gaussian window (sigma 1.5) applied in
  "valid" mode (no border padding), no 2x downsampling, negative contrast-structure terms
  clamped to 0, and the mean of the map. That reproduces the five published values to within
  0.0004. MATLAB's ``rgb2ycbcr`` Y (with +16, what the brief first suggested) is off by up to
  0.036, and adding the downsampling of the original MATLAB code is off by up to 0.13; the
  MATLAB-style Y stays available as ``luma="ycbcr"``.
- PSNR: the published ``psnr_vs_ref`` are pyiqa's default ``psnr`` (``test_y_channel=False``),
  i.e. MSE over all three RGB channels: ``channels="rgb"`` reproduces them within 0.005 dB.
  The Y-only values differ by 0.4 to 35 dB on those pairs (two of them are colour shifts that
  hardly change luma), so "Y" and "RGB" PSNR must never be compared with each other.
  The default here stays luma, the usual convention for enhancement benchmarks.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

Luma = Literal["bt601", "ycbcr"]

_WINDOW = 11
_SIGMA = 1.5
_K1, _K2, _L = 0.01, 0.03, 255.0
_C1 = (_K1 * _L) ** 2
_C2 = (_K2 * _L) ** 2


def to_luma(image: np.ndarray, luma: Luma = "bt601") -> np.ndarray:
    """Y channel of a BGR image as float64 rounded to integer levels (gray passes through).

    ``bt601``: 0.299 R + 0.587 G + 0.114 B in 0..255 (pyiqa's default Y).
    ``ycbcr``: MATLAB ``rgb2ycbcr`` Y, 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
    """
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a gray or BGR image, got shape {image.shape}")
    b, g, r = (image[..., i].astype(np.float64) for i in range(3))
    if luma == "bt601":
        y = 0.299 * r + 0.587 * g + 0.114 * b
    elif luma == "ycbcr":
        y = (65.481 * r + 128.553 * g + 24.966 * b) / 255.0 + 16.0
    else:
        raise ValueError(f"unknown luma convention {luma!r}")
    return np.round(y)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def _window_mean(x: np.ndarray, crop: int) -> np.ndarray:
    """Gaussian-weighted local mean; cropping the border gives MATLAB's filter2 'valid' result."""
    out = cv2.GaussianBlur(x, (_WINDOW, _WINDOW), _SIGMA, borderType=cv2.BORDER_REFLECT)
    return out[crop:-crop, crop:-crop] if crop else out


def ssim_map(a: np.ndarray, b: np.ndarray, *, luma: Luma = "bt601") -> np.ndarray:
    """Per-window SSIM on luma; 'valid' windows only, unless the image is smaller than one."""
    _check_pair(a, b)
    x, y = to_luma(a, luma), to_luma(b, luma)
    crop = _WINDOW // 2 if min(x.shape) >= _WINDOW else 0
    mu_x, mu_y = _window_mean(x, crop), _window_mean(y, crop)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _window_mean(x * x, crop) - mu_xx
    var_y = _window_mean(y * y, crop) - mu_yy
    cov = _window_mean(x * y, crop) - mu_xy
    cs = np.maximum((2.0 * cov + _C2) / (var_x + var_y + _C2), 0.0)
    return (2.0 * mu_xy + _C1) / (mu_xx + mu_yy + _C1) * cs


def ssim(a: np.ndarray, b: np.ndarray, *, luma: Luma = "bt601") -> float:
    """Mean SSIM of two same-shape uint8 images (BGR or gray); 1.0 means identical luma."""
    return float(ssim_map(a, b, luma=luma).mean())


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    channels: Literal["y", "rgb"] = "y",
    luma: Luma = "bt601",
) -> float:
    """PSNR in dB for peak 255, on luma (default) or over all channels; inf when identical."""
    _check_pair(a, b)
    if channels == "y":
        x, y = to_luma(a, luma), to_luma(b, luma)
    elif channels == "rgb":
        x, y = a.astype(np.float64), b.astype(np.float64)
    else:
        raise ValueError(f"unknown channels {channels!r}")
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(_L * _L / mse)
