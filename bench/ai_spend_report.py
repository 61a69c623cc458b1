"""AI spend per image of the seller photo set under a profile (issue 5's note figure).

    .venv/bin/python bench/ai_spend_report.py [--profile default] [--cap 25]

Assesses every photo in ``shared/images/sellers`` and routes it with the same pure code
the agents run (``imaging.assessment``, ``imaging.planning``), then prints which AI
steps the plans ask for, at the model catalog's prices: the spend per image when the
budget is not the limit, and how many photos a daily cap pays for. No call is made:
every AI call of a plan is billed its catalog price, so the plan is the bill (cache hits
on replays make real spend lower, never higher).
"""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path

from imaging.assessment import assess_quality
from imaging.planning import plan_enhancement
from profiles import load_profile
from services.model_catalog import load_catalog

SELLERS = Path(os.environ.get("IMGSTREAM_SHARED", Path(__file__).resolve().parents[2] /
                              "shared")) / "images" / "sellers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--cap", type=float, default=25.0, help="daily cap in USD")
    args = parser.parse_args()
    profile, catalog = load_profile(args.profile), load_catalog()
    paths = sorted(SELLERS.glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no seller photos under {SELLERS}")
    spend, by_operation, tiers = [], collections.Counter(), collections.Counter()
    usd_by_operation: collections.Counter[str] = collections.Counter()
    for path in paths:
        report = assess_quality(path.read_bytes(), profile)
        tier = report.judgement.tier
        tiers[tier] += 1
        plan = plan_enhancement(report.metrics.as_dict(), tier, report.subject,
                                profile, catalog)
        for step in plan.steps:
            if step.method == "ai":
                by_operation[f"{step.operation} ({step.model_id}, ${step.estimated_cost_usd})"] += 1
                usd_by_operation[step.operation] += step.estimated_cost_usd
        spend.append(plan.estimated_cost_usd)
    total = sum(spend)
    with_ai = sum(1 for s in spend if s > 0)
    print(f"profile {profile.name} {profile.version}: {len(paths)} seller photos, tiers "
          f"{dict(tiers)}")
    for name, count in by_operation.most_common():
        print(f"  AI step {name}: {count} photos ({count / len(paths):.0%})")
    print(f"AI spend: ${total:.2f} for the set, ${total / len(paths):.4f} per image "
          f"(${total / with_ai:.4f} per image that uses AI; {with_ai} of {len(paths)})")
    for operation, usd in usd_by_operation.most_common():
        print(f"  {operation}: ${usd:.2f}")
    per_image = total / len(paths)
    if per_image:
        print(f"a ${args.cap:.2f} daily cap pays AI for about {args.cap / per_image:.0f} "
              f"uploads like these a day; the rest run their local fallbacks")


if __name__ == "__main__":
    main()
