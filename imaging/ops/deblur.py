"""Deblur: undo a Gaussian (defocus-like) blur on luma, sized to the blur the photo shows.

Why not just unsharp masking: it boosts one fixed band whatever the blur, so a photo blurred
by sigma 2.5 gets halos but not its detail back, and a sharp one gets grit. Here the blur
sigma is measured (how much the gradient of the strongest edges drops when the photo is
blurred again by a known amount: a Gaussian edge of width s keeps sqrt((s² + a²) / (s² + b²))
of its slope going from blur a to blur b), and the luma is restored with a regularised inverse
filter (Tikhonov, gradient penalty) in the DCT domain. The DCT's mirrored borders match a blur
with reflected borders, so the frame does not ring, and one transform pair is cheaper than
iterative Richardson-Lucy. The penalty grows with the measured noise, so flat areas and JPEG
blocks are not amplified, and overshoot past the input's local range is squeezed, so strong
outlines do not get bright or dark rims. Every photo is a little soft (resizing, JPEG): an
edge width up to sigma 1 counts as sharp (nothing is done) and about 0.7 is taken out of
wider ones. The same luma change is added to B, G and R, as ``unsharp.py`` does, so colours
do not shift. About 8-12 ms for a 0.2 MP photo and 50-65 ms for 1 MP on one core, 2-4 ms
when the photo is found sharp.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MAX_SIGMA = 8.0
# estimate: blur the luma by _PRE, then again up to sqrt(_PRE² + _STEP²)
_PRE = 0.7
_STEP = 1.5
_EDGE_SHARE = 0.01  # strongest 1% of the gradient ...
_MIN_EDGE_SQ = 4.0  # ... and at least 2 gray levels per pixel
_MIN_EDGES = 20
_NATIVE_SIGMA = 0.7  # edge width of a sharp photo, taken out of the estimate ...
_SHARP_EDGE = 1.0  # ... which counts as sharp up to this width ...
_FADE_IN = 0.3  # ... and is faded in over this much more
_MIN_SIGMA = 0.3  # below this a deblur changes nothing visible
_LAMBDA = 4e-3  # gradient penalty on a clean photo ...
_NOISE_GAIN = 6.0  # ... times 1 + this * noise sigma²
_RIM_RADIUS = 2.0  # overshoot is measured against the input's range within this * sigma ...
_RIM_MARGIN = 2.0  # ... plus this many gray levels ...
_RIM_SQUEEZE = 0.3  # ... and what goes beyond is scaled by this
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def deblur(bgr: np.ndarray, *, sigma: float = 0.0, strength: float = 1.0) -> np.ndarray:
    """Return ``bgr`` with a Gaussian blur of ``sigma`` pixels deconvolved from its luma.

    ``sigma`` 0 measures it (:func:`estimate_blur_sigma`); ``strength`` scales the luma
    change (0 returns a copy, above 1 over-sharpens).
    """
    if not 0.0 <= sigma <= MAX_SIGMA:
        raise ValueError(f"sigma must be in [0, {MAX_SIGMA:g}] (0 = estimate), got {sigma}")
    if not 0.0 <= strength <= 2.0:
        raise ValueError(f"strength must be in [0, 2], got {strength}")
    if strength == 0.0 or min(bgr.shape[:2]) < 8:
        return bgr.copy()
    luma = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if sigma == 0.0:
        sigma = _added_sigma(_edge_sigma(luma))
    if sigma < _MIN_SIGMA:
        return bgr.copy()
    noise = _noise_sigma(luma)
    restored = _deconvolve(luma, sigma, _LAMBDA * (1.0 + _NOISE_GAIN * noise * noise))
    _limit_overshoot(restored, luma, sigma)
    delta = cv2.subtract(restored, luma, dst=luma)
    if strength != 1.0:
        delta *= np.float32(strength)
    return cv2.merge([cv2.add(c, delta, dtype=cv2.CV_8U) for c in cv2.split(bgr)])


def estimate_blur_sigma(bgr: np.ndarray) -> float:
    """Gaussian sigma (pixels) of the blur ``bgr`` shows beyond a sharp photo's; 0 if sharp."""
    if min(bgr.shape[:2]) < 8:
        return 0.0
    gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return _added_sigma(_edge_sigma(gray.astype(np.float32)))


def _added_sigma(total: float) -> float:
    """Blur beyond a sharp photo's own edge width; 0 up to ``_SHARP_EDGE``, then faded in."""
    if total <= _SHARP_EDGE:
        return 0.0
    ramp = min(1.0, (total - _SHARP_EDGE) / _FADE_IN)
    added = math.sqrt(total * total - _NATIVE_SIGMA * _NATIVE_SIGMA)
    return added * ramp * ramp * (3.0 - 2.0 * ramp)


def _gradient_sq(y: np.ndarray) -> np.ndarray:
    """Squared Sobel gradient; overwrites ``y`` (in place: fresh big arrays cost page faults)."""
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    cv2.Sobel(y, cv2.CV_32F, 0, 1, dst=y, ksize=3, scale=0.125)
    cv2.multiply(gx, gx, dst=gx)
    return cv2.add(gx, cv2.multiply(y, y, dst=y), dst=gx)


def _edge_sigma(luma: np.ndarray) -> float:
    """Median edge width (Gaussian sigma) over the local maxima of the strongest gradients."""
    wider = math.hypot(_PRE, _STEP)
    smooth = cv2.GaussianBlur(luma, (0, 0), _PRE)
    smoother = cv2.GaussianBlur(smooth, (0, 0), math.sqrt(wider * wider - _PRE * _PRE))
    g1 = _gradient_sq(smooth)
    g2 = _gradient_sq(smoother)
    border = 8 if min(luma.shape) > 32 else 2
    g1 = g1[border:-border, border:-border]
    g2 = g2[border:-border, border:-border]
    sample = g1[::2, ::2].ravel()
    k = int(sample.size * (1.0 - _EDGE_SHARE))
    threshold = max(float(np.partition(sample, k)[k]), _MIN_EDGE_SQ)
    peaks = (g1 >= cv2.dilate(g1, np.ones((3, 3), np.uint8))) & (g1 > threshold)
    if np.count_nonzero(peaks) < _MIN_EDGES:
        return 0.0
    kept = np.minimum(g2[peaks] / g1[peaks], 0.999)  # (s² + pre²) / (s² + wider²)
    widths = (wider * wider * kept - _PRE * _PRE) / (1.0 - kept)
    return math.sqrt(max(float(np.median(widths)), 0.0))


def _noise_sigma(luma: np.ndarray) -> float:
    """Gaussian noise sigma from Immerkaer's operator: the quieter half of its responses
    (their mean is 0.3247 sigma for pure noise), so edges and texture do not count."""
    response = np.abs(cv2.filter2D(luma, -1, _IMMERKAER)[2:-2:2, 2:-2:2]).ravel()
    if response.size < 2:
        return 0.0
    half = response.size // 2
    # the Immerkaer kernel has gain 6 on white noise
    return float(np.partition(response, half)[:half].mean()) / (0.3247 * 6.0)


def _limit_overshoot(restored: np.ndarray, luma: np.ndarray, sigma: float) -> None:
    """Compress (in place) what goes beyond the input's range within 2 sigma: the bright or
    dark rims a regularised inverse leaves along strong edges. A Gaussian blur only mixes
    nearby values, so true edge values lie within it; thin lines lose a little of their
    restored peak."""
    radius = max(1, math.ceil(_RIM_RADIUS * sigma))
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    removed = np.float32(1.0 - _RIM_SQUEEZE)
    for bound, sign in ((cv2.dilate(luma, kernel), 1.0), (cv2.erode(luma, kernel), -1.0)):
        excess = bound
        np.subtract(restored, bound, out=excess)  # above the max (or below the min) ...
        np.multiply(excess, np.float32(sign), out=excess)
        np.subtract(excess, np.float32(_RIM_MARGIN), out=excess)  # ... by more than the margin
        np.maximum(excess, 0.0, out=excess)
        np.multiply(excess, removed * np.float32(sign), out=excess)
        np.subtract(restored, excess, out=restored)


def _even_size(n: int) -> int:
    size = cv2.getOptimalDFTSize(n)
    while size % 2:
        size = cv2.getOptimalDFTSize(size + 1)
    return size


def _deconvolve(luma: np.ndarray, sigma: float, lam: float) -> np.ndarray:
    """argmin |g * x - y|² + lam |grad x|² with mirrored borders, solved in the DCT domain."""
    h, w = luma.shape
    ph, pw = _even_size(h), _even_size(w)  # cv2.dct wants even sizes
    padded = cv2.copyMakeBorder(luma, 0, ph - h, 0, pw - w, cv2.BORDER_REFLECT)
    wy = np.pi * np.arange(ph, dtype=np.float32) / ph
    wx = np.pi * np.arange(pw, dtype=np.float32) / pw
    otf = np.exp(-0.5 * sigma * sigma * wy * wy)[:, None] * np.exp(-0.5 * sigma * sigma * wx * wx)
    lam32 = np.float32(lam)  # times the eigenvalues of the discrete Laplacian:
    penalty = lam32 * (2.0 - 2.0 * np.cos(wy))[:, None] + lam32 * (2.0 - 2.0 * np.cos(wx))
    cv2.add(penalty, cv2.multiply(otf, otf), dst=penalty)
    gain = cv2.divide(otf, penalty, dst=otf)
    coefficients = cv2.dct(padded)
    cv2.multiply(coefficients, gain, dst=coefficients)
    return cv2.idct(coefficients, dst=padded)[:h, :w]
