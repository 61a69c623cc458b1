"""MySQL rows of AI spend: ai_usage_logs mirrors the settlements on images.ai.budget.

One row per AI step, keyed by (request_id, step_order). The first settlement of a
request wins (``INSERT IGNORE``), exactly as in the budget table, so the sum of
``cost_usd`` over a day equals the day's settled spend.
"""

from __future__ import annotations

from services.database import Database
from streams.records import AISpendSettled


async def save_ai_usage(db: Database, settlement: AISpendSettled) -> None:
    if not settlement.usage:
        return
    async with db.transaction() as conn, conn.cursor() as cur:
        for use in settlement.usage:
            await cur.execute(
                "INSERT IGNORE INTO ai_usage_logs (request_id, step_order, reservation_id,"
                " job_id, image_id, model_id, operation, budget_day, cost_usd, latency_ms,"
                " success, cache_hit, attempts, error_message)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (settlement.request_id, use["order"], settlement.reservation_id,
                 settlement.job_id, settlement.image_id, use["model_id"], use["operation"],
                 settlement.budget_day, use["cost_usd"], round(use["latency_ms"]),
                 use["success"], use["cache_hit"], use["attempts"], use["error"]),
            )
