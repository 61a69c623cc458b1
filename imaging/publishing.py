"""What finalize publishes (pure): renditions, their re-assessment, and the no-regression rule.

The enhanced image is published only if its large JPEG - what buyers get - scores better
than the original did by more than the profile's ``min_improvement``. Otherwise the
original is published; when it is already a JPEG that fits the large size its bytes are
served unchanged, so a kept original cannot lose quality to a re-encode.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from imaging.assessment import QualityReport, assess_quality
from imaging.decoding import decode_image
from imaging.encoding import Rendition, render_outputs
from imaging.profile import Profile


@dataclass(frozen=True)
class Publication:
    renditions: list[Rendition]
    after: QualityReport
    kept_original: bool
    reason: str | None

    @property
    def large_jpeg(self) -> Rendition:
        return next(r for r in self.renditions if r.name == "large" and r.format == "jpeg")


def renditions_of_original(original: bytes, profile: Profile) -> list[Rendition]:
    renditions = render_outputs(decode_image(original).bgr, profile.outputs)
    with Image.open(io.BytesIO(original)) as image:
        passthrough = (image.format == "JPEG" and image.getexif().get(0x0112, 1) == 1
                       and max(image.size) <= profile.outputs.large_max_side)
        size = image.size
    if passthrough:
        renditions = [Rendition("large", "jpeg", size[0], size[1], original)
                      if (r.name, r.format) == ("large", "jpeg") else r for r in renditions]
    return renditions


def publish_enhanced(enhanced: bytes, before_score: float,
                     profile: Profile) -> Publication | str:
    """The enhanced image's publication, or why the original must be published instead."""
    renditions = render_outputs(decode_image(enhanced).bgr, profile.outputs)
    large = next(r for r in renditions if r.name == "large" and r.format == "jpeg")
    after = assess_quality(large.data, profile)
    score = after.judgement.overall_score
    if score > before_score + profile.outputs.min_improvement:
        return Publication(renditions, after, False, None)
    return f"enhanced scored {score:.1f}, original {before_score:.1f}: published the original"


def publish_original(original: bytes, profile: Profile, reason: str | None) -> Publication:
    """Publish the original (skipped plans, or enhancements that did not help)."""
    renditions = renditions_of_original(original, profile)
    large = next(r for r in renditions if r.name == "large" and r.format == "jpeg")
    return Publication(renditions, assess_quality(large.data, profile), reason is not None,
                       reason)


def publish(original: bytes, enhanced: bytes | None, before_score: float,
            profile: Profile) -> Publication:
    """Renditions to publish; ``enhanced=None`` means the plan skipped enhancement."""
    if enhanced is None:
        return publish_original(original, profile, None)
    result = publish_enhanced(enhanced, before_score, profile)
    return result if isinstance(result, Publication) else publish_original(original, profile,
                                                                           result)
