"""MySQL reads behind the image, batch and statistics API (``streams.api``).

Only SELECTs: the writes stay with the sinks and the ingest path. Rows come back as
dicts for the pure shaping in ``streams.api.documents``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from services.database import Database
from streams.api.documents import ImageFilter
from streams.identity import keys_meant_by

# The current before/after of each photo: its current profile version's rows.
_CURRENT_QUALITY = """
  LEFT JOIN quality_metrics qb ON qb.image_id = p.image_id AND qb.metric_type = 'before'
    AND qb.profile_name = COALESCE(p.current_profile_name, %s)
    AND qb.profile_version = COALESCE(p.current_profile_version, %s)
  LEFT JOIN quality_metrics qa ON qa.image_id = p.image_id AND qa.metric_type = 'after'
    AND qa.job_id = p.current_job_id
  LEFT JOIN enhancement_jobs j ON j.job_id = p.current_job_id
"""
_SUMMARY_COLUMNS = """
  p.id, p.image_id, p.seller_id, p.sku_id, p.seller_label, p.sku_label, p.filename,
  p.status, p.created_at, p.updated_at, p.current_job_id, qb.quality_tier AS before_tier,
  qb.overall_score AS before_score, qb.issues AS before_issues,
  qa.quality_tier AS after_tier, qa.overall_score AS after_score,
  j.total_cost_usd, j.enhancement_params
"""


async def image_detail(db: Database, image_id: str) -> dict[str, Any] | None:
    """Everything ``GET /api/images/{id}`` shows; None for an unknown photo."""
    image = await db.fetchone("SELECT * FROM product_images WHERE image_id = %s", (image_id,))
    if image is None:
        return None
    quality = await db.fetchall(
        "SELECT * FROM quality_metrics WHERE image_id = %s ORDER BY created_at", (image_id,))
    jobs = await db.fetchall(
        "SELECT * FROM enhancement_jobs WHERE image_id = %s ORDER BY completed_at",
        (image_id,))
    steps: dict[str, list[dict]] = defaultdict(list)
    if jobs:
        marks = ", ".join(["%s"] * len(jobs))
        for row in await db.fetchall(
                f"SELECT * FROM processing_steps WHERE job_id IN ({marks})",
                [j["job_id"] for j in jobs]):
            steps[row["job_id"]].append(row)
    letter = await db.fetchone(
        "SELECT stage, error_class, error_message, failed_at FROM dead_letters"
        " WHERE image_id = %s ORDER BY failed_at DESC LIMIT 1", (image_id,))
    return {"image": image, "quality": quality, "jobs": jobs, "steps": steps,
            "letter": letter}


def listing_id_clause(column: str, value: str) -> tuple[str, list[str]]:
    """``column`` matches a seller or SKU id given as typed (a catalogue id) or as the
    event key of one."""
    keys = sorted(keys_meant_by(value))
    return f"{column} IN ({', '.join(['%s'] * len(keys))})", keys


def _where(f: ImageFilter, after: tuple[datetime, int] | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in (("p.seller_id", f.seller_id), ("p.sku_id", f.sku_id)):
        if value is not None:
            clause, keys = listing_id_clause(column, value)
            clauses.append(clause)
            args.extend(keys)
    if f.status is not None:
        clauses.append("p.status = %s")
        args.append(f.status)
    if f.tier is not None:
        clauses.append("COALESCE(qa.quality_tier, qb.quality_tier) = %s")
        args.append(f.tier)
    if f.since is not None:
        clauses.append("p.created_at >= %s")
        args.append(f.since)
    if f.until is not None:
        clauses.append("p.created_at < %s")
        args.append(f.until)
    if after is not None:
        clauses.append("(p.created_at, p.id) < (%s, %s)")
        args.extend(after)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


async def list_images(db: Database, f: ImageFilter, after: tuple[datetime, int] | None,
                      limit: int, profile: tuple[str, str]) -> list[dict[str, Any]]:
    """Newest first, ``limit + 1`` rows (the extra one says there is a next page)."""
    where, args = _where(f, after)
    return await db.fetchall(
        f"SELECT {_SUMMARY_COLUMNS} FROM product_images p {_CURRENT_QUALITY} {where}"
        " ORDER BY p.created_at DESC, p.id DESC LIMIT %s", [*profile, *args, limit + 1])


async def quality_rows(db: Database, f: ImageFilter, profile: tuple[str, str]
                       ) -> list[dict[str, Any]]:
    where, args = _where(f, None)
    return await db.fetchall(
        f"SELECT p.seller_id, p.created_at, qb.quality_tier AS before_tier,"
        f" qb.overall_score AS before_score, qb.issues AS before_issues,"
        f" qa.quality_tier AS after_tier, qa.overall_score AS after_score"
        f" FROM product_images p {_CURRENT_QUALITY} {where} LIMIT 100000", [*profile, *args])


async def usage_rows(db: Database, since: date) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT budget_day, operation, model_id, COUNT(*) AS calls,"
        " SUM(cost_usd > 0) AS paid_calls, SUM(cache_hit) AS cache_hits,"
        " SUM(NOT success) AS failures, SUM(cost_usd) AS spend FROM ai_usage_logs"
        " WHERE budget_day >= %s GROUP BY budget_day, operation, model_id"
        " ORDER BY budget_day DESC, operation, model_id", (since,))


async def recent_dead_letters(db: Database, limit: int) -> tuple[int, list[dict[str, Any]]]:
    total = await db.fetchone("SELECT COUNT(*) AS n FROM dead_letters")
    rows = await db.fetchall(
        "SELECT event_id, stage, error_class, error_message, image_id, source_topic,"
        " failed_at FROM dead_letters ORDER BY failed_at DESC LIMIT %s", (limit,))
    return int(total["n"]) if total else 0, rows
