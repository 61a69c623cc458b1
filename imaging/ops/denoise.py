"""Edge-preserving denoise: a self-guided filter (He et al. 2010) built from box filters.

Why this filter. Candidates were run on four 1000x1000 synthetic product scenes (mug/white,
box/wood, lamp/desk, sneaker/sweep, ``imaging.samples``) with ``add_noise`` at sigma 5, 10
and 15 (``bench/ops_bench.py --denoise``). Figures: mean PSNR dB / SSIM on luma against the
clean scene, and ms at 1 MP on one core (s = the noise sigma given to the filter):

======================================  ===========  ===========  ===========  =====
method                                  sigma 5      sigma 10     sigma 15     ms
======================================  ===========  ===========  ===========  =====
noisy input                             33.83/0.761  28.05/0.484  24.70/0.327  -
bilateral d=9, sigmaColor 2s, space 4   35.92/0.840  30.50/0.618  27.30/0.459  77
bilateral d=9, sigmaColor 7s, space 3   40.85/0.950  37.18/0.908  34.50/0.861  76
bilateral d=5, sigmaColor 4s, space 3   38.39/0.907  33.39/0.767  30.29/0.637  11
bilateral d=9, 7s, on a half-size copy  34.55/0.930  34.02/0.919  33.11/0.908  21
edgePreservingFilter recursive, s=15    36.62/0.862  31.33/0.670  28.11/0.521  183
guided, gray guide, r=2, eps=(3s)^2     40.30/0.948  36.45/0.916  33.73/0.882  54
**guided, self, r=2, eps=(3s)^2**       40.39/0.948  36.54/0.915  33.79/0.878  34
Gaussian sigma 1.2 (keeps no edges)     33.68/0.928  32.92/0.898  31.82/0.855  3
fastNlMeansDenoisingColored (ref. doc)  -            -            -            2235
======================================  ===========  ===========  ===========  =====

The self-guided filter is about 2x faster than a bilateral filter of the same reach (34-55
ms/MP across runs on this shared machine vs 76), gives up 0.5-0.7 dB PSNR to the best-tuned
bilateral but keeps more structure (SSIM 0.915 vs 0.908 at sigma 10, 0.878 vs 0.861 at 15),
and its strength is one smooth knob, ``eps``, tied directly to the noise sigma: a window whose
variance is well above ``eps`` is an edge or texture and is kept, one below it is flattened.
The bilateral filter with the usual sigmaColor = 2 sigma removes little noise; the half-size
bilateral is fast and fine at high noise but loses 6 dB of detail at sigma 5; the gray-guided
variant costs 60% more for no gain; ``cv2.edgePreservingFilter`` is slower and weaker here;
non-local means is far too slow for the stream.
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
