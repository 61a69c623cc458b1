"""route: a quality report becomes an enhancement plan (images.assessed -> images.enhance.local).

The decision tree is ``imaging.planning`` (pure, every threshold from the profile). The
AI path does not exist yet, so AI decisions run their local fallback with the reason
recorded; once it does, plans with AI steps will go to ``images.ai.requests`` instead,
in the same format. The job id is derived from (image, profile name, version): a
redelivered or replayed report yields the same job.
"""

from __future__ import annotations

from imaging.planning import plan_enhancement
from streams.app import app, catalog, profile, resources, settings, topics
from streams.processing import Stage, emit
from streams.records import EnhancementPlan, QualityAssessed, deterministic_id

STAGE = "route"


def job_id_for(image_id: str, profile_name: str, profile_version: str) -> str:
    return deterministic_id("job", image_id, profile_name, profile_version)


def build_plan(report: QualityAssessed) -> EnhancementPlan:
    plan = plan_enhancement(report.metrics, report.tier, report.subject.get("box"), profile,
                            catalog)
    job_id = job_id_for(report.image_id, report.profile["name"], report.profile["version"])
    return EnhancementPlan.new(
        event_id=deterministic_id("EnhancementPlan", job_id),
        image_id=report.image_id,
        job_id=job_id,
        seller_id=report.seller_id,
        sku_id=report.sku_id,
        source_uri=report.original_uri,
        content_sha256=report.content_sha256,
        profile=report.profile,
        tier=report.tier,
        skip=plan.skip,
        steps=[s.as_dict() for s in plan.steps],
        estimated_cost_usd=plan.estimated_cost_usd,
        before={"overall_score": report.overall_score, "tier": report.tier,
                "metrics": report.metrics, "scores": report.scores, "issues": report.issues},
    )


async def route_report(report: QualityAssessed) -> None:
    plan = build_plan(report)
    await emit(topics.enhance_local, plan, report.image_id, validate=settings.validate_events)


stage = Stage(STAGE, QualityAssessed, route_report, topics.dead_letter)


@app.agent(topics.assessed, name=STAGE)
async def route(stream):
    await resources.ready_with_retry()
    await stage.run(stream)
