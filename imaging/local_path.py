"""The local path as one pure function: what assess, route, enhance_local and finalize
compute for a photo, without Kafka or storage. Benchmarks use it as the "pure compute"
baseline of the pipeline and to measure outcome quality; the agents call the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging.assessment import QualityReport, assess_quality, working_decoded
from imaging.decoding import decode_image
from imaging.enhancement import StepResult, apply_plan
from imaging.planning import plan_enhancement
from imaging.profile import Profile
from imaging.publishing import Publication, publish
from services.model_catalog import ModelCatalog


@dataclass(frozen=True)
class LocalResult:
    before: QualityReport
    steps: list[StepResult]
    publication: Publication


def process_locally(data: bytes, profile: Profile, catalog: ModelCatalog) -> LocalResult:
    """One photo through assess, route, enhance and finalize, decoded once."""
    # Decoded once, no larger than the largest rendition (a DCT-scaled decode for big
    # JPEGs): nothing larger is ever published, so no step works on more pixels.
    source = decode_image(data, profile.outputs.large_max_side)
    before = assess_quality(data, profile, decoded=working_decoded(source, profile))
    plan = plan_enhancement(before.metrics.as_dict(), before.judgement.tier,
                            before.subject, profile, catalog)
    if plan.skip:
        return LocalResult(before, [], publish(data, None, before.judgement.overall_score,
                                               profile, source=source.bgr, before=before))
    plan_steps = [s.as_dict() for s in plan.steps]
    enhanced, steps = apply_plan(source.bgr, plan_steps)
    publication = publish(data, enhanced, before.judgement.overall_score, profile,
                          [s.as_dict() for s in steps], source=source.bgr, before=before,
                          plan_steps=plan_steps)
    return LocalResult(before, steps, publication)
