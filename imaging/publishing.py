"""What finalize publishes (pure): renditions, the content gate and the honest after-score.

An enhanced result is published only when it passes two checks, in this order:

1. the content-preservation gate (:mod:`imaging.preservation`): compared with the
   original at a common scale, the product is whole, its structure and colours kept;
2. it scores better than the original by more than the profile's ``min_improvement``,
   judged honestly: measured at the original's size and credited with the original's
   resolution, so interpolation and the pipeline's own moves earn nothing. An upscaled
   result (listings need the size for zoom) only has to score no worse than the
   original, within ``upscaled_score_tolerance``.

A local result the gate refuses is tried once more without the steps that cause what it
found (:data:`BLAMED_STEPS`: local contrast makes blotches on a plain wall, a deblurred
photo need not lose its sharpness for it); the result of the steps that remain is
published if it passes both checks, with what was left out and why. Otherwise the
original is published, with the reason. Every published file is a clean
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

from imaging.assessment import QualityReport, assess_quality, decoded_pixels, working_copy
from imaging.clean_jpeg import strip_jpeg_metadata
from imaging.decoding import decode_image
from imaging.encoding import Rendition, large_jpeg, render_outputs
from imaging.enhancement import apply_plan
from imaging.ops.background import color_bgr
from imaging.preservation import GateVerdict, check_preservation
from imaging.profile import Profile
from imaging.segmentation import find_product_mask


@dataclass(frozen=True)
class Publication:
    renditions: list[Rendition]
    after: QualityReport | None  # None: the original's own pixels, as assessed before
    kept_original: bool
    reason: str | None
    gate: dict[str, Any] | None = field(default=None)
    #: Steps of the plan whose work is not in what was published (the gate refused it).
    left_out: tuple[str, ...] = ()

    @property
    def large_jpeg(self) -> Rendition:
        return next(r for r in self.renditions if r.name == "large" and r.format == "jpeg")


@dataclass(frozen=True)
class Refusal:
    """Why an enhanced result is not published, and what the gate measured."""

    reason: str
    gate: dict[str, Any] | None


def lossless_large(original: bytes, profile: Profile) -> Rendition | None:
    """A JPEG original that fits the large size, as published: the same pixels without
    EXIF/GPS, comments or anything after the image (None when it cannot be)."""
    with Image.open(io.BytesIO(original)) as image:
        fits = image.format == "JPEG" and max(image.size) <= profile.outputs.large_max_side
        size = image.size
    if not fits:
        return None
    try:
        clean = strip_jpeg_metadata(original)
    except ValueError:
        return None  # rotated or unusual: the re-encode stands
    return Rendition("large", "jpeg", size[0], size[1], clean)


#: How a step whose work is not in the published result starts its details.
LEFT_OUT = "left out of the published result"

#: What the content gate's findings are caused by: the steps a refused result is tried
#: again without (reason code -> operations).
BLAMED_STEPS: dict[str, tuple[str, ...]] = {
    "blotches": ("contrast", "sharpen"),
    "halos": ("contrast", "sharpen"),
    "colour cast": ("contrast", "brightness"),
    "product cut": ("background",),
}


def without_blamed_steps(plan_steps: Sequence[dict[str, Any]], gate: dict[str, Any]
                         ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The plan without the steps the gate's findings blame, and the operations left out
    (none when nothing would change, or when an AI step would have to run again)."""
    if any(s.get("method") == "ai" for s in plan_steps):
        return list(plan_steps), ()  # never paid for twice
    codes = {reason.split(":")[0] for reason in gate.get("reasons", [])}
    blamed = {op for code in codes for op in BLAMED_STEPS.get(code, ())}
    kept = [s for s in plan_steps if s["operation"] not in blamed]
    left_out = tuple(s["operation"] for s in plan_steps if s["operation"] in blamed)
    return (kept, left_out) if kept and left_out else (list(plan_steps), ())


def steps_as_published(steps: Sequence[dict[str, Any]], publication: Publication
                       ) -> list[dict[str, Any]]:
    """The executed steps, those whose work the published result leaves out saying so."""
    if not publication.left_out:
        return list(steps)
    refused = "; ".join((publication.gate or {}).get("refused", []))
    note = f"{LEFT_OUT}: the content gate refused it ({refused})"
    return [{**s, "details": note} if s.get("operation") in publication.left_out else s
            for s in steps]


def replaced_background(steps: Sequence[dict[str, Any]]) -> bool:
    """Did a background step change the image (not declined, not failed, not left out)?"""
    return any(s.get("operation") == "background" and s.get("success", True)
               and not str(s.get("details") or "").startswith(("declined:", LEFT_OUT))
               for s in steps)


def gate_result(before: np.ndarray, after: np.ndarray, steps: Sequence[dict[str, Any]],
                profile: Profile) -> GateVerdict:
    """The content gate on decoded original (``before``) and result (``after``)."""
    fill, product = None, None
    if replaced_background(steps):
        fill = color_bgr(profile.enhancement.background_color)
        # Found on the assessment's working copy: the mask it already made.
        mask = find_product_mask(working_copy(before, profile), profile.segmentation)
        product = mask.alpha if mask is not None else None
    return check_preservation(before, after, product, fill, profile.gate)


def publish_enhanced(result: np.ndarray, source: np.ndarray, before_score: float,
                     steps: Sequence[dict[str, Any]], profile: Profile
                     ) -> Publication | Refusal:
    """The enhanced image's publication, or why the original must be published instead.

    ``result`` and ``source`` are decoded pixels (the enhanced image and the original).
    The after-check measures the large rendition's own pixels, not a decode of its JPEG.
    """
    verdict = gate_result(source, result, steps, profile)
    gate = {"passed": verdict.passed, "reasons": verdict.reasons, "measures": verdict.measures}
    if not verdict.passed:
        return Refusal(f"gate: {verdict.reason}: published the original", gate)
    # Only the large JPEG is encoded before the verdict; the rest if it is published.
    large = large_jpeg(result, profile.outputs)
    source_size = (source.shape[1], source.shape[0])
    after = assess_quality(large[1].data, profile, source_size=source_size, source=source,
                           decoded=decoded_pixels(large[0], profile, judged_at=source_size))
    score = after.judgement.overall_score
    # Listings need the larger size for zoom; interpolation is not credited, so an
    # upscaled result is published unless the other steps made it worse.
    upscaled = result.shape[0] * result.shape[1] > source.shape[0] * source.shape[1]
    if (score > before_score + profile.outputs.min_improvement
            or (upscaled and score >= before_score - profile.outputs.upscaled_score_tolerance)):
        return Publication(render_outputs(result, profile.outputs, large), after, False, None,
                           gate)
    return Refusal(f"enhanced scored {score:.1f}, original {before_score:.1f}: "
                   f"published the original", gate)


def publish_original(original: bytes, profile: Profile, reason: str | None,
                     gate: dict[str, Any] | None = None, source: np.ndarray | None = None,
                     before: QualityReport | None = None) -> Publication:
    """Publish the original (skipped plans, or enhancements that were refused).

    When its large JPEG is the original's own pixels (a lossless metadata strip), its
    quality is the original's: ``before`` is reused (``after=None`` when the caller has no
    report: "as before"). Otherwise the large JPEG is what is published, and assessed.
    ``source``: the original's decoded pixels, when already in hand.
    """
    if source is None:
        source = decode_image(original, profile.outputs.large_max_side).bgr
    clean = lossless_large(original, profile)
    if clean is not None:
        # It fits the large size, so ``source`` is the large rendition's pixels.
        renditions = render_outputs(source, profile.outputs, (source, clean))
        return Publication(renditions, before, reason is not None, reason, gate)
    large = large_jpeg(source, profile.outputs)
    after = assess_quality(large[1].data, profile)
    return Publication(render_outputs(source, profile.outputs, large), after,
                       reason is not None, reason, gate)


def publish(original: bytes, enhanced: np.ndarray | None, before_score: float,
            profile: Profile, steps: Sequence[dict[str, Any]] = (),
            source: np.ndarray | None = None,
            before: QualityReport | None = None,
            plan_steps: Sequence[dict[str, Any]] | None = None) -> Publication:
    """Renditions to publish; ``enhanced=None`` means the plan skipped enhancement.
    ``source``: the original's decoded pixels, when the caller has them. ``plan_steps``:
    the plan that made ``enhanced`` (from the same ``source``), which a refused result is
    made again from without the blamed steps (none: no second try)."""
    if source is None:  # nothing larger than the large rendition is ever published
        source = decode_image(original, profile.outputs.large_max_side).bgr
    if enhanced is None:
        return publish_original(original, profile, None, source=source, before=before)
    result = publish_enhanced(enhanced, source, before_score, steps, profile)
    if isinstance(result, Publication):
        return result
    if plan_steps is not None and result.gate is not None and not result.gate["passed"]:
        kept, left_out = without_blamed_steps(plan_steps, result.gate)
        if left_out:
            again, again_steps = apply_plan(source, kept)
            second = publish_enhanced(again, source, before_score,
                                      [s.as_dict() for s in again_steps], profile)
            if isinstance(second, Publication):
                gate = {**(second.gate or {}), "left_out": list(left_out),
                        "refused": result.gate["reasons"]}
                return Publication(second.renditions, second.after, False, None, gate,
                                   left_out)
    return publish_original(original, profile, result.reason, result.gate, source, before)


def publish_result(original: bytes, enhanced: np.ndarray | bytes | None,
                   before_score: float, steps: Sequence[dict[str, Any]], profile: Profile,
                   plan_steps: Sequence[dict[str, Any]] | None = None) -> Publication:
    """finalize's work: the original and the enhanced image as pixels, or as a stored
    intermediate (decoded here), or None for a skipped plan."""
    if isinstance(enhanced, bytes):
        enhanced = decode_image(enhanced).bgr
    return publish(original, enhanced, before_score, profile, steps, plan_steps=plan_steps)
