"""What MySQL knows of the photos a replay covers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from imaging.profile import Profile
from services.database import Database
from streams.replay.comparisons import plan_signature

DONE_STATUSES = ("completed", "skipped")
IN_CHUNK = 500            # ids per SQL IN (...) list


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


def _marks(items: Sequence[str]) -> str:
    return ", ".join(["%s"] * len(items))


async def done_jobs(db: Database, job_ids: Sequence[str]) -> set[str]:
    done: set[str] = set()
    for part in _chunks(job_ids):
        rows = await db.fetchall(
            f"SELECT job_id FROM enhancement_jobs WHERE job_id IN ({_marks(part)})"
            f" AND status IN ({_marks(DONE_STATUSES)})", (*part, *DONE_STATUSES))
        done.update(r["job_id"] for r in rows)
    return done


async def current_results(db: Database, image_ids: Sequence[str]
                          ) -> dict[str, dict[str, Any]]:
    """Per image: current profile and job, its tier (current_tier / latest_tier), plan."""
    results: dict[str, dict[str, Any]] = {}
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT p.image_id, p.current_job_id, p.current_profile_name,"
            " p.current_profile_version,"
            " (SELECT q.quality_tier FROM quality_metrics q WHERE q.image_id = p.image_id"
            "   AND q.metric_type = 'before' AND q.profile_name = p.current_profile_name"
            "   AND q.profile_version = p.current_profile_version) AS current_tier,"
            " (SELECT q.quality_tier FROM quality_metrics q WHERE q.image_id = p.image_id"
            "   AND q.metric_type = 'before' ORDER BY q.created_at DESC, q.id DESC LIMIT 1)"
            "   AS latest_tier"
            f" FROM product_images p WHERE p.image_id IN ({_marks(part)})", tuple(part))
        results.update({r["image_id"]: r for r in rows})
    jobs = [r["current_job_id"] for r in results.values() if r["current_job_id"]]
    steps: dict[str, list[dict[str, Any]]] = {j: [] for j in jobs}
    for part in _chunks(jobs):
        for row in await db.fetchall(
                "SELECT job_id, step_order, step_name, method FROM processing_steps"
                f" WHERE job_id IN ({_marks(part)})", tuple(part)):
            steps[row["job_id"]].append({"order": row["step_order"],
                                         "operation": row["step_name"],
                                         "method": row["method"]})
    for row in results.values():
        job = row["current_job_id"]
        row["plan"] = plan_signature(steps[job]) if job else None
    return results


async def job_states(db: Database, job_ids: Sequence[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for part in _chunks(job_ids):
        rows = await db.fetchall("SELECT job_id, status FROM enhancement_jobs"
                                 f" WHERE job_id IN ({_marks(part)})", tuple(part))
        states.update({r["job_id"]: r["status"] for r in rows})
    return states


async def dead_lettered(db: Database, image_ids: Sequence[str], since: datetime) -> set[str]:
    failed: set[str] = set()
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT DISTINCT image_id FROM dead_letters WHERE failed_at >= %s"
            f" AND image_id IN ({_marks(part)})", (since, *part))
        failed.update(r["image_id"] for r in rows)
    return failed


async def tiers_under(db: Database, image_ids: Sequence[str], profile: Profile
                      ) -> dict[str, str]:
    tiers: dict[str, str] = {}
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT image_id, quality_tier FROM quality_metrics WHERE metric_type = 'before'"
            " AND profile_name = %s AND profile_version = %s"
            f" AND image_id IN ({_marks(part)})", (profile.name, profile.version, *part))
        tiers.update({r["image_id"]: r["quality_tier"] for r in rows})
    return tiers
