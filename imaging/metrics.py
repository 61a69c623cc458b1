"""The raw quality measurements of one photo (pure: arrays in, numbers out).

Definitions (gray = BT.601 luma of the working copy, 0-255):
* blur: variance of the Laplacian (3x3) - low means few sharp edges (seed design).
* brightness: mean gray; brightness_deviation: its distance from the profile's ideal,
  counted only when the frame confirms it (see ``exposure_deviation``).
* contrast: standard deviation of gray.
  (Subject-aware, both are taken on the product's own pixels when the backdrop model
  gives a mask, on the subject box otherwise.)
* noise: sigma of additive noise in gray levels, from Immerkær's 3x3 residual read on the
  flattest 10% of pixels (median via a histogram; see ``noise_sigma``). It works on JPEGs,
  where the finest wavelet band the seed's MAD estimators read is quantised to zero.
* brisque: BRISQUE with the LIVE-trained model (imaging.brisque), 0 best .. 100 worst;
  None for a flat or tiny image (its naturalness sub-score is then left out).
* background_complexity: Canny edge density outside the subject divided by the profile's
  saturation density, capped at 1 (0 = plain backdrop).
* width, height, megapixels, file_size_bytes: of the original, not the working copy.

With ``subject_aware`` the blur, brightness, contrast and BRISQUE are taken on the
subject's box, so a product on a plain backdrop is judged on the product.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from imaging.brisque import brisque_score
from imaging.profile import BrightnessScale, Profile
from imaging.segmentation import TOO_LARGE, TOUCHES_FRAME, find_product_mask, judge_mask
from imaging.subject import Subject, find_subject, subject_from_mask


@dataclass(frozen=True)
class QualityMetrics:
    blur: float
    brightness: float
    brightness_deviation: float
    contrast: float
    noise: float
    brisque: float | None
    background_complexity: float
    subject_fraction: float
    width: int
    height: int
    megapixels: float
    file_size_bytes: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def laplacian_variance(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def noise_sigma(gray: np.ndarray, region: np.ndarray | None = None) -> float:
    """Sigma of additive noise in gray levels: Immerkaer's residual on the flattest pixels.

    The residual is the 3x3 kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] (zero on any locally
    planar patch, 6 sigma for white Gaussian noise). It is read only on the 10% of usable
    pixels whose Sobel magnitude, maxed over the 3x3 neighbourhood, is lowest: dilating the
    gradient also drops thin lines and dots (a Sobel is blind at their centre, the residual
    is not), so print, weave and backdrop texture barely move the estimate. The median of
    |residual| there (from its histogram, interpolated within the integer bin) gives
    sigma = median / (0.6745 * 6), times 1.03 for the bias of choosing pixels by a gradient
    that shares neighbours with the residual (calibrated on pure Gaussian noise).

    Why this one (chosen on seller JPEGs with Gaussian noise added and saved again at
    q70-95): Donoho's median of the Haar HH band reads exactly 0 on a third of clean JPEGs
    (JPEG zeroes that band), reads busy prints as noise and is not monotone in the noise;
    a low percentile of 8x8-block residuals reads far too low once JPEG has flattened the
    flat blocks; Immerkaer over all pixels, with an undilated Sobel mask, or with a coarser
    residual reads texture as noise; the mean instead of the median tracks q70-80 a little
    closer but lets twice as much texture through and is exactly 0 on some clean JPEGs.
    This one reads close to the added sigma where JPEG keeps the noise (q90-95), below it
    at q70-80 (JPEG removes the finest noise, the only part seen here), rises with the
    noise, and is never exactly 0 on a real JPEG (when more than half of the flattest pixels
    are perfectly flat it reports about 0.06).

    Pixels at 0 or 255 (clipped noise), outside ``region`` (a boolean mask, when given) and
    the 1-px border are left out. Cost: a few
    OpenCV passes and two 256-bin histograms, no sort (under 2 ms at 1024x768, one core).
    """
    if gray.ndim != 2:
        raise ValueError(f"noise_sigma expects a 2-D gray image, got shape {gray.shape}")
    if gray.dtype != np.uint8:
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    gray = np.ascontiguousarray(gray)
    second = np.array([1.0, -2.0, 1.0], np.float32)
    residual = cv2.convertScaleAbs(cv2.sepFilter2D(gray, cv2.CV_16S, second, second))
    gradient = cv2.add(cv2.convertScaleAbs(cv2.Sobel(gray, cv2.CV_16S, 1, 0)),
                       cv2.convertScaleAbs(cv2.Sobel(gray, cv2.CV_16S, 0, 1)))
    gradient = cv2.dilate(gradient, np.ones((3, 3), np.uint8))
    usable = cv2.inRange(gray, 1, 254)
    if region is not None:
        usable[~region] = 0
    usable[0, :] = usable[-1, :] = 0
    usable[:, 0] = usable[:, -1] = 0
    # Both histograms are taken on every other row: plenty of samples, half the cost.
    gradient, residual, usable = gradient[1::2], residual[1::2], usable[1::2]
    counts = np.cumsum(cv2.calcHist([gradient], [0], usable, [256], [0, 256]).ravel())
    if counts[-1] == 0:
        return 0.0
    flattest = int(np.searchsorted(counts, 0.10 * counts[-1]))  # gradient level of the 10%
    mask = cv2.bitwise_and(cv2.inRange(gradient, 0, flattest), usable)
    hist = cv2.calcHist([residual], [0], mask, [256], [0, 256]).ravel()
    if hist.sum() == 0:
        return 0.0
    return _histogram_median(hist) / (0.6745 * 6.0) * 1.03


def _histogram_median(hist: np.ndarray) -> float:
    """Median of non-negative integer samples from their histogram, interpolated in its bin.

    Bin k holds [k - 0.5, k + 0.5), bin 0 only [0, 0.5).
    """
    counts = np.cumsum(hist)
    half = 0.5 * counts[-1]
    k = int(np.searchsorted(counts, half))
    below = counts[k - 1] if k else 0.0
    share = (half - below) / hist[k]
    return float(0.5 * share if k == 0 else k - 0.5 + share)


def gray_percentile(gray: np.ndarray, q: float) -> float:
    """Percentile of a uint8 image from its histogram (no sort)."""
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    cumulative = np.cumsum(hist)
    return float(np.searchsorted(cumulative, q / 100.0 * cumulative[-1]))


def exposure_deviation(brightness: float, gray: np.ndarray, scale: BrightnessScale,
                       backdrop: np.ndarray | None = None) -> float:
    """|brightness - ideal|, counted only when the whole frame confirms bad exposure.

    A navy product on a white backdrop is dark, not underexposed: the frame still has
    highlights. A dark photo has none (its top percentiles stay grey); a washed-out one
    has no shadows. ``backdrop`` (gray levels of the pixels around the product, when its
    mask is known): a dark product on a well-lit mid-tone sheet is dark, not underexposed;
    brightening it would turn a black skirt grey.
    """
    deviation = abs(brightness - scale.ideal)
    if brightness < scale.ideal and gray_percentile(gray, 98) >= scale.highlight_floor:
        return 0.0
    if (brightness < scale.ideal and backdrop is not None and backdrop.size >= 256
            and float(backdrop.mean()) >= scale.backdrop_floor):
        return 0.0
    if brightness > scale.ideal and gray_percentile(gray, 2) <= scale.shadow_ceiling:
        return 0.0
    return deviation


def edge_density(gray: np.ndarray, region: np.ndarray, low: int, high: int) -> float:
    """Share of Canny edge pixels within ``region`` (a boolean mask)."""
    total = int(region.sum())
    if total == 0:
        return 0.0
    # Smooth first (as Canny intends): sensor noise is not clutter.
    edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 1.4), low, high) > 0
    return float(np.count_nonzero(edges & region) / total)


def background_region(subject: Subject, shape: tuple[int, int]) -> np.ndarray:
    """Pixels that belong to the backdrop: outside the subject (mask, else box)."""
    if subject.mask is not None:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
        return cv2.dilate(subject.mask.astype(np.uint8), kernel) == 0
    region = np.ones(shape, dtype=bool)
    region[subject.y0:subject.y1, subject.x0:subject.x1] = False
    return region


def _product_region(subject: Subject, shape: tuple[int, int]) -> np.ndarray | None:
    """The product and a few pixels around it, when its mask is known.

    Noise is the product's: a plain fill around it (a replaced background) is flat and
    clipped, and would leave only the product's edges among the flattest pixels.
    """
    if subject.mask is None or subject.mask.mean() < 0.02:
        return None
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    return cv2.dilate(subject.mask.astype(np.uint8), kernel) > 0


def _inner(crop: np.ndarray, share: float = 0.2) -> np.ndarray:
    """The middle of a product's box: what BRISQUE judges, with no backdrop or fill in it.

    BRISQUE fits local-contrast statistics over the whole patch; a flat fill around the
    product (a replaced background) would dominate them.
    """
    h, w = crop.shape[:2]
    dy, dx = round(h * share), round(w * share)
    inner = crop[dy:h - dy, dx:w - dx]
    return inner if min(inner.shape[:2]) >= 32 else crop


def _brisque_or_none(subject: np.ndarray, frame: np.ndarray) -> float | None:
    """BRISQUE of the subject, else of the frame; None when the image is flat or tiny.

    BRISQUE fits distributions of local contrast: a uniform patch has none to fit.
    """
    for image in (subject, frame):
        try:
            return brisque_score(image)
        except ValueError:
            continue
    return None


def locate_product(bgr: np.ndarray, gray: np.ndarray, profile: Profile,
                   use_model: bool = True) -> Subject:
    """The subject the metrics are taken on: the product's mask wherever one is found.

    The backdrop colour model answers first (cheap). Where it has nothing and the area
    outside the central box looks busy - which is where a background step could be
    planned - the salient-object model is asked; its mask gives the subject region when
    it is trusted, or when only the frame cuts the product (the region is still the
    product's). Its verdict rides along (``segmentation``) so the route stage knows whether
    a local background replacement would be trusted.
    """
    rules = profile.segmentation
    subject = find_subject(bgr, profile.assessment.subject_padding)
    if subject.method == "backdrop":
        verdict = judge_mask(subject.mask.astype(np.float32), rules, "backdrop")
        if verdict.confident or not use_model:
            return Subject(*subject.box, subject.method, subject.mask, verdict.summary())
    if subject.method == "center" and not use_model:
        return subject
    if subject.method == "center":
        region = background_region(subject, gray.shape)
        busy = edge_density(gray, region, profile.background.canny_low,
                            profile.background.canny_high) / profile.background.saturation_density
        if busy <= profile.routing.background_cleanup_above:
            return subject  # nothing a background step would be planned for
    mask = find_product_mask(bgr, rules, use_model=use_model)
    if mask is None:
        return subject
    summary = mask.summary()
    if mask.confident or mask.reason in (TOUCHES_FRAME, TOO_LARGE):
        height, width = gray.shape
        return subject_from_mask(mask.alpha, width, height, profile.assessment.subject_padding,
                                 summary)
    return Subject(*subject.box, subject.method, subject.mask, summary)


def measure(bgr: np.ndarray, profile: Profile, *, original_width: int, original_height: int,
            file_size_bytes: int, use_model: bool = True, subject: Subject | None = None
            ) -> tuple[QualityMetrics, Subject]:
    """All metrics of a BGR working copy, plus the subject they were taken on.

    ``subject`` (at this copy's size) fixes where the product is instead of locating it:
    a result is measured on the region its original was, so before and after compare.
    """
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    if subject is None:
        subject = locate_product(bgr, gray, profile, use_model)
    if profile.assessment.subject_aware and subject.method != "full_frame":
        crop = (slice(subject.y0, subject.y1), slice(subject.x0, subject.x1))
        gray_subject, bgr_subject = gray[crop], bgr[crop]
        # Exposure is the product's own: its pixels when we have a mask, not the backdrop
        # around it inside the box.
        tone = gray[subject.mask] if subject.mask is not None else gray_subject
    else:
        gray_subject, bgr_subject, tone = gray, bgr, gray

    brightness = float(tone.mean())
    around = gray[~subject.mask] if subject.mask is not None else None
    deviation = exposure_deviation(brightness, gray, profile.scores.brightness, around)
    background = background_region(subject, gray.shape)
    if background.mean() < 0.05:
        complexity = 0.0  # the product fills the frame: there is no backdrop to judge
    else:
        density = edge_density(gray, background, profile.background.canny_low,
                               profile.background.canny_high)
        complexity = min(1.0, density / profile.background.saturation_density)
    metrics = QualityMetrics(
        blur=laplacian_variance(gray_subject),
        brightness=brightness,
        brightness_deviation=deviation,
        contrast=float(tone.std()),
        noise=noise_sigma(gray, _product_region(subject, gray.shape)),
        brisque=_brisque_or_none(_inner(bgr_subject) if subject.mask is not None
                                 else bgr_subject, bgr),
        background_complexity=complexity,
        subject_fraction=subject.fraction(width, height),
        width=original_width,
        height=original_height,
        megapixels=original_width * original_height / 1e6,
        file_size_bytes=file_size_bytes,
    )
    return metrics, subject
