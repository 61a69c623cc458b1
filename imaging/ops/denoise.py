"""Edge-preserving denoise: a self-guided filter (He et al. 2010) built from box filters.

Why this filter. Candidates were measured on four 1000x1000 synthetic product scenes
(mug/white, box/wood, lamp/desk, sneaker/sweep) with ``imaging.samples.add_noise`` at sigma
5, 10 and 15, each tuned over its strength knob; figures are mean PSNR (dB, luma) / SSIM
against the clean scene, and ms per megapixel on one core (``bench/ops_bench.py --denoise``):

==========================================  ============  ============  ============  =====
method (best setting)                       sigma 5       sigma 10      sigma 15      ms/MP
==========================================  ============  ============  ============  =====
noisy input                                 33.82/0.755   28.04/0.474   24.69/0.316   -
bilateral d=9, sigmaColor 2 sigma (usual)   35.96/0.836   30.52/0.610   27.32/0.449   75
bilateral d=9, sigmaColor 7 sigma, space 3  41.07/0.951   37.40/0.911   34.72/0.863   75
bilateral d=5, sigmaColor 4 sigma           38.48/0.906   33.45/0.763   30.34/0.631   11
bilateral d=9, sigmaColor 7 sigma, half size 35.09/0.937   34.56/0.927   33.61/0.917   21
edgePreservingFilter (recursive, s=15)      36.66/0.859   31.36/0.663   28.14/0.513   170
guided, gray guide, r=2, eps=(3 sigma)^2    40.57/0.950   36.72/0.920   34.00/0.886   60
**guided, self, r=2, eps=(3 sigma)^2**      40.65/0.950   36.79/0.919   34.04/0.883   30
fastNlMeansDenoisingColored (reference)     -             -             -             2235
==========================================  ============  ============  ============  =====

The self-guided filter is 2.5x faster than a bilateral filter of the same reach, loses
0.4-0.7 dB PSNR to the best-tuned bilateral but keeps more structure (SSIM 0.919 vs 0.911 at
sigma 10, 0.883 vs 0.863 at sigma 15), and its strength is one smooth knob (``eps``) that
maps directly to the noise sigma: a window whose variance is well above ``eps`` is an edge
or texture and is kept, one below it is flattened. The half-size bilateral is fast and good
at high noise but loses 6 dB of fine detail at sigma 5. ``cv2.edgePreservingFilter`` is both
slower and weaker here; non-local means is far too slow for the stream.
"""

from __future__ import annotations

import cv2
import numpy as np

from imaging.metrics import noise_sigma


def denoise(
    bgr: np.ndarray,
    *,
    sigma: float | None = None,
    radius: int = 2,
    strength: float = 3.0,
) -> np.ndarray:
    """Return ``bgr`` smoothed for Gaussian noise of ``sigma`` gray levels (a copy if < 1).

    ``sigma`` defaults to the image's own estimate (``imaging.metrics.noise_sigma``);
    ``strength`` scales it into the guided filter's ``eps = (strength * sigma)^2``.
    """
    if sigma is None:
        sigma = noise_sigma(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    elif isinstance(sigma, bool) or not isinstance(sigma, int | float):
        raise ValueError(f"sigma must be a number, got {sigma!r}")
    if not 0.0 <= sigma <= 100.0:
        raise ValueError(f"sigma must be in [0, 100], got {sigma}")
    if not 1 <= radius <= 16:
        raise ValueError(f"radius must be in [1, 16], got {radius}")
    if not 0.1 <= strength <= 20.0:
        raise ValueError(f"strength must be in [0.1, 20], got {strength}")
    if sigma < 1.0:
        return bgr.copy()
    return guided_filter(bgr, radius=radius, eps=(strength * sigma) ** 2)


def guided_filter(bgr: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """Self-guided filter per channel: ``q = mean(a) * I + mean(b)`` over (2r+1)^2 windows."""
    image = bgr.astype(np.float32)
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean = box(image)
    var = box(image * image) - mean * mean
    a = var / (var + np.float32(eps))
    b = mean - a * mean
    out = box(a) * image + box(b)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
