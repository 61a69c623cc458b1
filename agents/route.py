"""route: a quality report becomes an enhancement plan.

The decision tree is ``imaging.planning`` (pure, every threshold from the profile). A
plan without AI steps goes to images.enhance.local; a plan with AI steps asks the
budget gate first (images.ai.requests, keyed by the budget day). With AI disabled in
settings, AI steps run their local fallback, reason ``ai_disabled``. The job id is
derived from (image, profile name, version) and the request id from the job: a
redelivered or replayed report yields the same job and never reserves twice.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from imaging.planning import AI_DISABLED, ai_steps, plan_enhancement
from streams.app import Worker
from streams.budget import budget_day, budget_zone
from streams.processing import Stage
from streams.records import (
    AIEnhancementRequested,
    EnhancementPlan,
    QualityAssessed,
    deterministic_id,
    job_id_for,
)

STAGE = "route"


def build_plan(report: QualityAssessed, worker: Worker) -> EnhancementPlan:
    plan = plan_enhancement(report.metrics, report.tier, report.subject,
                            worker.profile_for(report.profile), worker.catalog,
                            None if worker.settings.ai_enabled else AI_DISABLED)
    job_id = job_id_for(report.image_id, report.profile["name"], report.profile["version"])
    return EnhancementPlan.new(
        event_id=deterministic_id("EnhancementPlan", job_id),
        image_id=report.image_id,
        job_id=job_id,
        seller_id=report.seller_id,
        sku_id=report.sku_id,
        seller_label=report.seller_label,
        sku_label=report.sku_label,
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


def ai_request(plan: EnhancementPlan, day: str) -> AIEnhancementRequested:
    request_id = deterministic_id("AIEnhancementRequested", plan.job_id)
    return AIEnhancementRequested.new(
        event_id=request_id,
        request_id=request_id,
        image_id=plan.image_id,
        job_id=plan.job_id,
        budget_key=day,
        budget_day=day,
        estimated_cost_usd=plan.estimated_cost_usd,
        plan=plan.to_document(),
    )


async def route_report(report: QualityAssessed, worker: Worker) -> None:
    plan = build_plan(report, worker)
    if ai_steps(plan.steps):
        # The day the report was made, not the day it is routed: a report redelivered
        # after midnight asks the same day's budget, where its reservation already is.
        made = datetime.fromisoformat(report.occurred_at.replace("Z", "+00:00"))
        day = budget_day(made, budget_zone(worker.settings.budget_timezone))
        await worker.send("ai_requests", ai_request(plan, day))
    else:
        await worker.send("enhance_local", plan)


def register(worker: Worker) -> None:
    stage = Stage(STAGE, QualityAssessed, partial(route_report, worker=worker),
                  worker.topics.dead_letter)

    worker.run_stage(worker.topics.assessed, stage)
