"""Pure comparisons of current and replayed results: tier moves, plan changes, AI cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

TIERS = ("excellent", "good", "poor")
NEVER_ASSESSED = "none"
Signature = tuple[tuple[str, str], ...]


def current_tier(row: Mapping[str, Any] | None) -> str:
    """The tier of the image's current result, else of its latest assessment, else none."""
    if row is None:
        return NEVER_ASSESSED
    return row.get("current_tier") or row.get("latest_tier") or NEVER_ASSESSED


def tier_matrix(moves: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Counts of (current tier -> new tier); rows include ``none`` (never assessed)."""
    matrix = {old: dict.fromkeys(TIERS, 0) for old in (*TIERS, NEVER_ASSESSED)}
    for old, new in moves:
        matrix[old][new] += 1
    return matrix


def tier_moves_summary(matrix: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """How many images go up, down, keep their tier, or get a first one."""
    rank = {tier: i for i, tier in enumerate(TIERS)}  # 0 = best
    counts = Counter()
    for old, row in matrix.items():
        for new, n in row.items():
            if old == NEVER_ASSESSED:
                counts["first"] += n
            else:
                counts["same" if old == new else "up" if rank[new] < rank[old]
                       else "down"] += n
    return {k: counts[k] for k in ("same", "up", "down", "first")}


def plan_signature(steps: Iterable[Mapping[str, Any]]) -> Signature:
    """What a plan does, for comparison: its (operation, method) pairs in order."""
    ordered = sorted(steps, key=lambda s: s["order"])
    return tuple((s["operation"], s["method"]) for s in ordered)


def plan_change(current: Signature | None, new: Signature) -> str:
    if current is None:
        return "new"
    return "same" if current == new else "changed"


def describe_plan(signature: Signature | None) -> str:
    if signature is None:
        return "(none)"
    return " > ".join(f"{op}[{method}]" for op, method in signature) or "skip"


def ai_cost(steps: Iterable[Mapping[str, Any]]) -> float:
    return round(sum(s["estimated_cost_usd"] for s in steps if s["method"] == "ai"), 6)
