"""MySQL writes of a completed image, in one transaction, idempotent by design.

Keys: enhancement_jobs.job_id, processing_steps (job_id, step_order), quality_metrics
(image, 'after', profile name, version). Rewriting the same event rewrites the same
values, so redelivery never duplicates or corrupts a row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.database import Database
from streams.records import ImageCompleted

_AFTER_COLUMNS = ("blur_score", "brightness", "contrast", "noise_level", "brisque_score",
                  "background_complexity", "width", "height", "file_size_bytes",
                  "overall_score", "quality_tier", "issues", "recommendations", "job_id")
_UPDATE_AFTER = ", ".join(f"{c} = VALUES({c})" for c in _AFTER_COLUMNS)
_JOB_COLUMNS = ("image_id", "status", "profile_name", "profile_version", "enhancement_params",
                "processing_time_ms", "total_cost_usd", "ai_used", "started_at",
                "completed_at")
_UPDATE_JOB = ", ".join(f"{c} = VALUES({c})" for c in _JOB_COLUMNS)
_UPDATE_STEP = ", ".join(f"{c} = VALUES({c})" for c in (
    "step_name", "method", "model_id", "success", "latency_ms", "cost_usd", "details"))


def _timestamp(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).replace(
        tzinfo=None)


async def save_completion(db: Database, event: ImageCompleted) -> None:
    completed_at = _timestamp(event.occurred_at)
    async with db.transaction() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO enhancement_jobs (job_id, image_id, status, profile_name,"
            " profile_version, enhancement_params, processing_time_ms, total_cost_usd, ai_used,"
            " started_at, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" ON DUPLICATE KEY UPDATE {_UPDATE_JOB}",
            (event.job_id, event.image_id, event.status, event.profile["name"],
             event.profile["version"],
             json.dumps({"steps": event.steps, "kept_original": event.kept_original,
                         "kept_original_reason": event.kept_original_reason,
                         "outputs": event.outputs}),
             round(event.processing_ms), event.total_cost_usd, event.ai_used, completed_at,
             completed_at),
        )
        if event.steps:  # one multi-row INSERT: one round trip for all the steps
            await cur.executemany(
                "INSERT INTO processing_steps (job_id, step_order, step_name, method, model_id,"
                " success, latency_ms, cost_usd, details) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                f" %s, %s) ON DUPLICATE KEY UPDATE {_UPDATE_STEP}",
                [(event.job_id, step["order"], step["operation"], step["method"],
                  step.get("model_id"), bool(step.get("success", True)),
                  round(step.get("latency_ms", 0)), step.get("cost_usd", 0.0),
                  step_details(step))
                 for step in event.steps],
            )
        after = event.after
        if after is not None:
            m = after.get("metrics", {})
            await cur.execute(
                "INSERT INTO quality_metrics (image_id, metric_type, profile_name,"
                " profile_version, blur_score, brightness, contrast, noise_level,"
                " brisque_score, background_complexity, width, height, file_size_bytes,"
                " overall_score, quality_tier, issues, recommendations, job_id)"
                " VALUES (%s, 'after', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                f" %s, %s, %s) ON DUPLICATE KEY UPDATE {_UPDATE_AFTER}",
                (event.image_id, event.profile["name"], event.profile["version"],
                 m.get("blur"), m.get("brightness"), m.get("contrast"), m.get("noise"),
                 m.get("brisque"), m.get("background_complexity"), m.get("width"),
                 m.get("height"), m.get("file_size_bytes"), after["overall_score"],
                 after["tier"], json.dumps(after.get("issues", [])), json.dumps([]),
                 event.job_id),
            )
        large = next((o for o in event.outputs if o.get("name") == "large"
                      and o.get("format") == "jpeg" and not o.get("alias")), None)
        # The current result is the most recent completion; a redelivered older one
        # (another profile version finished since) leaves it alone.
        await cur.execute(
            "UPDATE product_images SET status = %s, enhanced_url = %s, cloudfront_url = %s,"
            " last_error = NULL, current_job_id = %s, current_profile_name = %s,"
            " current_profile_version = %s, current_completed_at = %s WHERE image_id = %s"
            " AND (current_completed_at IS NULL OR current_completed_at <= %s"
            " OR current_job_id = %s)",
            (event.status, large["uri"] if large else None, event.cdn_url, event.job_id,
             event.profile["name"], event.profile["version"], completed_at, event.image_id,
             completed_at, event.job_id),
        )


def step_details(step: dict) -> str | None:
    """A step's record: why it fell back (first, so it can be searched by prefix), then
    what it did or why it declined."""
    parts = [p for p in (step.get("fallback_reason"), step.get("details")) if p]
    return "; ".join(dict.fromkeys(parts)) or None
