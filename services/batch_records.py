"""MySQL record of batches (``batches``, and their photos in ``enhance_requests``).

A batch lives here, not in a worker: any worker drives it, a restarted one carries on,
and a cancel is one UPDATE of the photos not sent yet.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from services.database import Database
from services.image_queries import listing_id_clause

MAX_BATCH = 10_000

# Per photo of a batch: its request, the job's outcome, a dead letter since it was sent.
_ITEMS = """
  SELECT r.id, r.image_id, r.job_id, r.state, r.sent_at, j.status AS job_status,
         j.total_cost_usd, j.enhancement_params, p.status AS image_status,
         qb.quality_tier AS before_tier, qb.overall_score AS before_score,
         qa.quality_tier AS after_tier, qa.overall_score AS after_score,
         EXISTS (SELECT 1 FROM dead_letters d WHERE d.image_id = r.image_id
                 AND r.sent_at IS NOT NULL AND d.failed_at >= r.sent_at) AS dead_lettered
  FROM enhance_requests r
  JOIN batches b ON b.batch_id = r.batch_id
  LEFT JOIN enhancement_jobs j ON j.job_id = r.job_id
  LEFT JOIN product_images p ON p.image_id = r.image_id
  LEFT JOIN quality_metrics qb ON qb.image_id = r.image_id AND qb.metric_type = 'before'
    AND qb.profile_name = b.profile_name AND qb.profile_version = b.profile_version
  LEFT JOIN quality_metrics qa ON qa.image_id = r.image_id AND qa.metric_type = 'after'
    AND qa.job_id = r.job_id
  WHERE r.batch_id = %s
"""


async def create_batch(db: Database, batch_id: str, profile: dict[str, str],
                       selection: dict[str, Any], jobs: list[tuple[str, str]]) -> None:
    """The batch and one queued request per (image_id, job_id), in one transaction."""
    async with db.transaction() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO batches (batch_id, profile_name, profile_version, selection, total)"
            " VALUES (%s, %s, %s, %s, %s)",
            (batch_id, profile["name"], profile["version"], json.dumps(selection), len(jobs)))
        await cur.executemany(
            "INSERT INTO enhance_requests (batch_id, image_id, job_id, state)"
            " VALUES (%s, %s, %s, 'queued')",
            [(batch_id, image_id, job_id) for image_id, job_id in jobs])


async def select_images(db: Database, seller_id: str | None, sku_id: str | None,
                        since: datetime | None, until: datetime | None) -> list[str]:
    clauses = ["NOT EXISTS (SELECT 1 FROM deleted_images d WHERE d.image_id = p.image_id)"]
    args: list[Any] = []
    for column, value in (("p.seller_id", seller_id), ("p.sku_id", sku_id)):
        if value is not None:
            clause, keys = listing_id_clause(column, value)
            clauses.append(clause)
            args.extend(keys)
    if since is not None:
        clauses.append("p.created_at >= %s")
        args.append(since)
    if until is not None:
        clauses.append("p.created_at < %s")
        args.append(until)
    rows = await db.fetchall(
        f"SELECT p.image_id FROM product_images p WHERE {' AND '.join(clauses)}"
        f" ORDER BY p.created_at, p.id LIMIT {MAX_BATCH + 1}", args)
    return [row["image_id"] for row in rows]


async def known_images(db: Database, image_ids: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start:start + 500]
        marks = ", ".join(["%s"] * len(chunk))
        rows = await db.fetchall(
            f"SELECT image_id FROM product_images WHERE image_id IN ({marks})", chunk)
        known.update(row["image_id"] for row in rows)
    return known


async def batch(db: Database, batch_id: str) -> dict[str, Any] | None:
    return await db.fetchone("SELECT * FROM batches WHERE batch_id = %s", (batch_id,))


async def running_batches(db: Database) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT batch_id, profile_name, profile_version FROM batches WHERE state = 'running'"
        " ORDER BY created_at")


async def items(db: Database, batch_id: str, after_id: int = 0, limit: int | None = None
                ) -> list[dict[str, Any]]:
    tail = " AND r.id > %s ORDER BY r.id" + (f" LIMIT {int(limit)}" if limit else "")
    return await db.fetchall(_ITEMS + tail, (batch_id, after_id))


async def spend(db: Database, batch_id: str) -> float:
    """AI spend of the batch's jobs since the batch began."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(u.cost_usd), 0) AS spent FROM ai_usage_logs u"
        " JOIN enhance_requests r ON r.job_id = u.job_id AND r.batch_id = %s"
        " JOIN batches b ON b.batch_id = r.batch_id WHERE u.created_at >= b.created_at",
        (batch_id,))
    return float(row["spent"]) if row else 0.0


async def queued(db: Database, batch_id: str, limit: int) -> list[dict[str, Any]]:
    return await db.fetchall(
        "SELECT image_id FROM enhance_requests WHERE batch_id = %s AND state = 'queued'"
        " ORDER BY id LIMIT %s", (batch_id, limit))


async def mark_sent(db: Database, batch_id: str, image_id: str) -> None:
    """A photo that needed no new event (its job was done already, under this profile)."""
    await db.execute(
        "UPDATE enhance_requests SET state = 'sent', sent_at = CURRENT_TIMESTAMP(3)"
        " WHERE batch_id = %s AND image_id = %s AND state = 'queued'", (batch_id, image_id))


async def mark_cancelled(db: Database, batch_id: str, image_id: str | None = None) -> int:
    """Cancel the photos not sent yet (one, or all of the batch)."""
    if image_id is not None:
        return await db.execute(
            "UPDATE enhance_requests SET state = 'cancelled' WHERE batch_id = %s"
            " AND image_id = %s AND state = 'queued'", (batch_id, image_id))
    return await db.execute(
        "UPDATE enhance_requests SET state = 'cancelled' WHERE batch_id = %s"
        " AND state = 'queued'", (batch_id,))


async def finish(db: Database, batch_id: str, state: str) -> None:
    await db.execute(
        "UPDATE batches SET state = %s, finished_at = CURRENT_TIMESTAMP(3)"
        " WHERE batch_id = %s AND state = 'running'", (state, batch_id))
