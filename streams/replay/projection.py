"""The dry run: assess and route in-process with the workers' pure functions, and report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from imaging.assessment import assess_quality
from imaging.planning import plan_enhancement
from imaging.profile import Profile
from services.model_catalog import ModelCatalog
from streams.replay.comparisons import (
    Signature,
    describe_plan,
    plan_change,
    tier_matrix,
    tier_moves_summary,
)

_projection: tuple[Profile, ModelCatalog, str | None] | None = None


def _init_projection(profile: Profile, catalog: ModelCatalog, ai_reason: str | None) -> None:
    global _projection
    _projection = (profile, catalog, ai_reason)


def project(data: bytes) -> dict[str, Any]:
    """Assess and route one photo as the assess and route agents would (pool worker)."""
    assert _projection is not None, "_init_projection was not run"
    profile, catalog, ai_reason = _projection
    report = assess_quality(data, profile)
    plan = plan_enhancement(report.event_metrics(), report.judgement.tier,
                            report.subject, profile, catalog, ai_reason)
    steps = [s.as_dict() for s in plan.steps]
    return {"tier": report.judgement.tier, "overall_score": report.judgement.overall_score,
            "steps": steps}


@dataclass(frozen=True)
class Projection:
    """One photo in a dry run: its current result and what the replay would make of it."""

    image_id: str
    seller_id: str
    sku_id: str
    current_tier: str
    current_profile: str | None
    current_plan: Signature | None
    would_request: bool
    new_tier: str | None = None
    new_score: float | None = None
    new_plan: Signature = ()
    ai_usd: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["current_plan"] = describe_plan(self.current_plan)
        document["new_plan"] = None if self.error else describe_plan(self.new_plan)
        return document


def dry_run_report(projections: Sequence[Projection], budget: Mapping[str, Any] | None,
                   examples: int = 5) -> dict[str, Any]:
    """Tier moves, plan changes and projected spend of a dry run (JSON-ready)."""
    assessed = [p for p in projections if p.error is None]
    matrix = tier_matrix((p.current_tier, p.new_tier) for p in assessed if p.new_tier)
    changes = Counter(plan_change(p.current_plan, p.new_plan) for p in assessed)
    changed = [p for p in assessed if plan_change(p.current_plan, p.new_plan) == "changed"]
    paying = [p for p in assessed if p.would_request and p.ai_usd > 0]
    projected = round(sum(p.ai_usd for p in paying), 6)
    remaining = None if budget is None else budget.get("remaining_usd")
    return {
        "tier_moves": matrix,
        "tier_moves_summary": tier_moves_summary(matrix),
        "plans": {
            "same": changes["same"], "changed": changes["changed"], "new": changes["new"],
            "examples": [{"image_id": p.image_id, "seller_id": p.seller_id, "sku_id": p.sku_id,
                          "current": describe_plan(p.current_plan),
                          "new": describe_plan(p.new_plan)} for p in changed[:examples]],
        },
        "projected_ai_usd": projected,
        "projected_ai_images": len(paying),
        "budget": dict(budget) if budget is not None else "unknown",
        "fits_budget": None if remaining is None else projected <= remaining,
        "failed": [{"image_id": p.image_id, "error": p.error}
                   for p in projections if p.error is not None],
    }
