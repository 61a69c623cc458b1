"""What finalize publishes (pure): renditions, the content gate and the honest after-score.

An enhanced result is published only when it passes two checks, in this order:

1. the content-preservation gate (:mod:`imaging.preservation`): compared with the
   original at a common scale, the product is whole, its structure and colours kept;
2. it scores better than the original by more than the profile's ``min_improvement``,
   judged honestly: measured at the original's size and credited with the original's
   resolution, so interpolation and the pipeline's own moves earn nothing. An upscaled
   result (listings need the size for zoom) only has to score no worse than the
   original, within ``upscaled_score_tolerance``.

Otherwise the original is published, with the reason. Every published file is a clean
encode: orientation applied, metadata and trailing bytes gone; a kept JPEG original that
fits the large size keeps its pixels exactly (a lossless metadata strip).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from imaging.assessment import QualityReport, assess_quality
from imaging.clean_jpeg import strip_jpeg_metadata
from imaging.decoding import decode_image
from imaging.encoding import Rendition, render_outputs
from imaging.ops.background import color_bgr
from imaging.preservation import GateVerdict, check_preservation
from imaging.profile import Profile
from imaging.segmentation import find_product_mask


@dataclass(frozen=True)
class Publication:
    renditions: list[Rendition]
    after: QualityReport
    kept_original: bool
    reason: str | None
    gate: dict[str, Any] | None = field(default=None)

    @property
    def large_jpeg(self) -> Rendition:
        return next(r for r in self.renditions if r.name == "large" and r.format == "jpeg")


@dataclass(frozen=True)
class Refusal:
    """Why an enhanced result is not published, and what the gate measured."""

    reason: str
    gate: dict[str, Any] | None


def renditions_of_original(original: bytes, profile: Profile) -> list[Rendition]:
    renditions = render_outputs(decode_image(original).bgr, profile.outputs)
    with Image.open(io.BytesIO(original)) as image:
        fits = image.format == "JPEG" and max(image.size) <= profile.outputs.large_max_side
        size = image.size
    if fits:
        try:  # same pixels, without EXIF/GPS, comments or anything after the image
            clean = strip_jpeg_metadata(original)
        except ValueError:
            clean = None  # rotated or unusual: the re-encode stands
        if clean is not None:
            renditions = [Rendition("large", "jpeg", size[0], size[1], clean)
                          if (r.name, r.format) == ("large", "jpeg") else r
                          for r in renditions]
    return renditions


def replaced_background(steps: Sequence[dict[str, Any]]) -> bool:
    """Did a background step change the image (not declined, not failed)?"""
    return any(s.get("operation") == "background" and s.get("success", True)
               and not str(s.get("details") or "").startswith("declined:")
               for s in steps)


def gate_result(before: np.ndarray, after: np.ndarray, steps: Sequence[dict[str, Any]],
                profile: Profile) -> GateVerdict:
    """The content gate on decoded original (``before``) and result (``after``)."""
    fill, product = None, None
    if replaced_background(steps):
        fill = color_bgr(profile.enhancement.background_color)
        mask = find_product_mask(before, profile.segmentation)
        product = mask.alpha if mask is not None else None
    return check_preservation(before, after, product, fill, profile.gate)


def publish_enhanced(enhanced: bytes, original: bytes, before_score: float,
                     steps: Sequence[dict[str, Any]], profile: Profile
                     ) -> Publication | Refusal:
    """The enhanced image's publication, or why the original must be published instead."""
    source, result = decode_image(original).bgr, decode_image(enhanced).bgr
    verdict = gate_result(source, result, steps, profile)
    gate = {"passed": verdict.passed, "reasons": verdict.reasons, "measures": verdict.measures}
    if not verdict.passed:
        return Refusal(f"gate: {verdict.reason}: published the original", gate)
    renditions = render_outputs(result, profile.outputs)
    large = next(r for r in renditions if r.name == "large" and r.format == "jpeg")
    after = assess_quality(large.data, profile,
                           source_size=(source.shape[1], source.shape[0]), source=source)
    score = after.judgement.overall_score
    if score > before_score + profile.outputs.min_improvement:
        return Publication(renditions, after, False, None, gate)
    # Listings need the larger size for zoom; interpolation is not credited, so an
    # upscaled result is published unless the other steps made it worse.
    upscaled = result.shape[0] * result.shape[1] > source.shape[0] * source.shape[1]
    if upscaled and score >= before_score - profile.outputs.upscaled_score_tolerance:
        return Publication(renditions, after, False, None, gate)
    return Refusal(f"enhanced scored {score:.1f}, original {before_score:.1f}: "
                   f"published the original", gate)


def publish_original(original: bytes, profile: Profile, reason: str | None,
                     gate: dict[str, Any] | None = None) -> Publication:
    """Publish the original (skipped plans, or enhancements that were refused)."""
    renditions = renditions_of_original(original, profile)
    large = next(r for r in renditions if r.name == "large" and r.format == "jpeg")
    return Publication(renditions, assess_quality(large.data, profile), reason is not None,
                       reason, gate)


def publish(original: bytes, enhanced: bytes | None, before_score: float,
            profile: Profile, steps: Sequence[dict[str, Any]] = ()) -> Publication:
    """Renditions to publish; ``enhanced=None`` means the plan skipped enhancement."""
    if enhanced is None:
        return publish_original(original, profile, None)
    result = publish_enhanced(enhanced, original, before_score, steps, profile)
    if isinstance(result, Publication):
        return result
    return publish_original(original, profile, result.reason, result.gate)
