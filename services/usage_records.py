"""MySQL rows of AI spend: ai_usage_logs, the durable record of every settlement.

One row per AI step, keyed by (request_id, step_order). enhance_ai writes them before it
sends the settlement (a broker that loses the settlement cannot lose the record of the
money), ai_usage_sink again from images.ai.budget. The first settlement of a request wins
(``INSERT IGNORE``), exactly as in the budget table, so the sum of ``cost_usd`` over a
day equals the day's settled spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.database import Database
from streams.records import AISpendSettled


@dataclass
class DaySpend:
    """A budget day's settled spend as ai_usage_logs records it, in micro-dollars."""

    by_operation: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)
    paid_calls: int = 0


async def settled_spend(db: Database, day: str) -> DaySpend:
    rows = await db.fetchall(
        "SELECT operation, model_id, ROUND(SUM(cost_usd) * 1000000) AS micros,"
        " SUM(cost_usd > 0) AS paid FROM ai_usage_logs WHERE budget_day = %s"
        " GROUP BY operation, model_id", (day,))
    spend = DaySpend()
    for row in rows:
        micros = int(row["micros"] or 0)
        spend.by_operation[row["operation"]] = spend.by_operation.get(row["operation"], 0) + micros
        spend.by_model[row["model_id"]] = spend.by_model.get(row["model_id"], 0) + micros
        spend.paid_calls += int(row["paid"] or 0)
    return spend


async def settled_requests(db: Database, day: str) -> dict[str, int]:
    """Micro-dollars per AI request that ai_usage_logs holds for a budget day."""
    rows = await db.fetchall(
        "SELECT request_id, ROUND(SUM(cost_usd) * 1000000) AS micros FROM ai_usage_logs"
        " WHERE budget_day = %s GROUP BY request_id", (day,))
    return {row["request_id"]: int(row["micros"] or 0) for row in rows if "request_id" in row}


async def settled_request(db: Database, request_id: str) -> int | None:
    """Micro-dollars ai_usage_logs holds for one AI request; None when it holds no row
    (the request was never settled, or only in a budget table since lost)."""
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, ROUND(COALESCE(SUM(cost_usd), 0) * 1000000) AS micros"
        " FROM ai_usage_logs WHERE request_id = %s", (request_id,))
    return int(row["micros"] or 0) if row and row["n"] else None


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


async def recorded_usage(db: Database, request_id: str) -> list[dict]:
    """The ai_usage_logs rows of one AI request, in step order (empty: never settled)."""
    return await db.fetchall(
        "SELECT step_order, reservation_id, job_id, image_id, model_id, operation,"
        " budget_day, cost_usd, latency_ms, success, cache_hit, attempts, error_message"
        " FROM ai_usage_logs WHERE request_id = %s ORDER BY step_order", (request_id,))
