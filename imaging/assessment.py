"""assess_quality: bytes in, quality report out. The whole assess stage minus Kafka."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from imaging.decoding import DecodedImage, decode_image, fit, fitted_size
from imaging.metrics import QualityMetrics, locate_product, measure
from imaging.profile import Profile
from imaging.scoring import Judgement, judge
from imaging.subject import Subject


@dataclass(frozen=True)
class QualityReport:
    metrics: QualityMetrics
    judgement: Judgement
    subject: dict
    working_scale: float
    elapsed_ms: float

    def event_metrics(self) -> dict:
        """The metrics as events carry them (4 decimals): what route plans from."""
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in self.metrics.as_dict().items()}


def working_size(width: int, height: int, profile: Profile) -> tuple[float, tuple[int, int]]:
    """The scale factor and (width, height) at which a photo of this size is assessed."""
    side = profile.assessment.working_max_side
    return min(1.0, side / max(width, height)), fitted_size(width, height, side)


def working_copy(bgr: np.ndarray, profile: Profile) -> np.ndarray:
    """``bgr`` at the profile's working size (the assessment's copy of a photo)."""
    return fit(bgr, profile.assessment.working_max_side)


def working_decoded(source: DecodedImage, profile: Profile) -> DecodedImage | None:
    """The assessment's working copy made from a photo decoded at full size (None when
    ``source`` is itself reduced: a copy of a copy would be softer than the direct one,
    and the judge would mark the photo down for it).

    The copy equals a decode at the working size, so stages that hold the full-size
    pixels find the product mask the assessment found: a cache hit, not another model run.
    """
    if (source.bgr.shape[1], source.bgr.shape[0]) != (source.original_width,
                                                      source.original_height):
        return None
    return DecodedImage(working_copy(source.bgr, profile), source.original_width,
                        source.original_height)


def subject_of(bgr: np.ndarray, profile: Profile) -> Subject:
    """Where the product is in a photo, as its assessment locates it (working size)."""
    small = working_copy(bgr, profile)
    return locate_product(small, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), profile)


def decoded_pixels(bgr: np.ndarray, profile: Profile,
                   judged_at: tuple[int, int] | None = None) -> DecodedImage:
    """Pixels already in hand (a rendition just made) as the assessment's decoded copy.

    ``judged_at`` (width, height): the smaller source a result will be judged at
    (:func:`assess_quality`'s ``source_size``). The copy is then made straight at that
    size's working resolution with Lanczos: an area-averaged working copy first would
    take much of an upscale's Laplacian variance with it, and the judge would mark the
    upscale down for its own round trip (docs/decisions/0001, profile 2.5.0).
    """
    height, width = bgr.shape[:2]
    if judged_at is not None and judged_at[0] * judged_at[1] < width * height:
        _, size = working_size(*judged_at, profile)
        return DecodedImage(cv2.resize(bgr, size, interpolation=cv2.INTER_LANCZOS4),
                            width, height)
    return DecodedImage(working_copy(bgr, profile), width, height)


def assess_quality(data: bytes, profile: Profile,
                   source_size: tuple[int, int] | None = None,
                   source: np.ndarray | None = None,
                   decoded: DecodedImage | None = None) -> QualityReport:
    """Decode at the profile's working resolution, measure, and judge one photo.

    ``source_size`` (width, height) makes the judgement honest about detail: a result
    made from a smaller source is measured at the source's size (downscaled to it) and
    credited with the source's resolution, so interpolated pixels earn nothing. ``source``
    (the original's pixels) makes the product's region the one the original was judged
    on, so a replaced background or a sharper backdrop does not move it. ``decoded``:
    the pixels of ``data`` when the caller has them (``decoded_pixels``), not decoded again.
    """
    started = time.perf_counter()
    if decoded is None:
        decoded = decode_image(data, profile.assessment.working_max_side)
    bgr, width, height = decoded.bgr, decoded.original_width, decoded.original_height
    scale = decoded.scale
    if source_size is not None and source_size[0] * source_size[1] < width * height:
        width, height = source_size
        factor, size = working_size(width, height, profile)
        if (bgr.shape[1], bgr.shape[0]) != size:
            # Lanczos both ways: a Lanczos upscale brought back to its source size keeps
            # its Laplacian variance (an area average would penalise every upscale for
            # the round trip, not for anything it did).
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_LANCZOS4)
        scale = factor
    fixed = None
    if source is not None:
        frame = working_copy(source, profile)
        fixed = subject_of(frame, profile).resized((frame.shape[1], frame.shape[0]),
                                                   (bgr.shape[1], bgr.shape[0]))
    metrics, subject = measure(bgr, profile, original_width=width, original_height=height,
                               file_size_bytes=len(data), subject=fixed)
    judgement = judge(metrics, profile)
    to_original = 1.0 / scale
    subject_info = {
        "method": subject.method,
        "box": [round(v * to_original) for v in subject.box],  # original pixels
        "fraction": round(metrics.subject_fraction, 4),
    }
    if subject.segmentation is not None:
        subject_info["mask"] = subject.segmentation
    return QualityReport(metrics, judgement, subject_info, scale,
                         (time.perf_counter() - started) * 1000.0)
