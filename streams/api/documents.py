"""What the API answers, shaped from database rows: pure functions, no I/O.

Rows are the dicts ``services.image_queries`` reads; URLs come from a ``Links`` that the
view builds (signed worker routes that open anywhere, CloudFront URLs for production).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

IMAGE_ID = re.compile(r"^[0-9a-f]{32}$")
TIERS = ("excellent", "good", "fair", "poor")
STATUSES = ("uploaded", "analyzing", "analyzed", "queued", "processing", "enhancing",
            "optimizing", "completed", "skipped", "failed")
TERMINAL = ("completed", "skipped", "failed")
MAX_PAGE = 200
DEFAULT_PAGE = 50
# Rendition files a worker route serves: <name>.<extension>.
RENDITION = re.compile(r"^(large|thumb)\.(jpg|webp)$")
_METRICS = {"blur": "blur_score", "brightness": "brightness", "contrast": "contrast",
            "noise": "noise_level", "brisque": "brisque_score",
            "background_complexity": "background_complexity", "width": "width",
            "height": "height", "file_size_bytes": "file_size_bytes"}


class BadRequest(ValueError):
    """A query or body the API cannot take: answered 400 with this message."""


@dataclass(frozen=True)
class Links:
    """How the view turns object locations into URLs."""

    original: Callable[[str], str]  # image_id -> URL of the original
    rendition: Callable[[str, str], str]  # (image_id, "large.jpg") -> URL
    cdn_domain: str


# --- values -----------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def number(value: Any) -> float | None:
    """A finite float (DECIMAL columns arrive as Decimal) or None."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def json_column(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, bytes | str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def parse_since(text: str | None) -> datetime | None:
    """An ISO-8601 time or date; naive means UTC. None when not given."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"since/until must be ISO-8601 (e.g. 2026-12-01T00:00:00Z), "
                         f"not {text!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_limit(text: str | None, default: int = DEFAULT_PAGE) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


# --- cursors ----------------------------------------------------------------------------


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    """Newest first: the page after ``(created_at, id)``. None for the first page."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        stamp, row_id = raw.split("|")
        return datetime.fromisoformat(stamp), int(row_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API gave out") from None


@dataclass(frozen=True)
class ImageFilter:
    seller_id: str | None = None
    sku_id: str | None = None
    tier: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_FILTER_KEYS = {"seller_id", "sku_id", "tier", "status", "since", "until", "limit", "cursor"}


def parse_filter(query: Mapping[str, str]) -> ImageFilter:
    unknown = sorted(set(query) - _FILTER_KEYS)
    if unknown:
        raise BadRequest(f"unknown parameters {unknown}; known: {sorted(_FILTER_KEYS)}")
    tier, status = query.get("tier") or None, query.get("status") or None
    if tier is not None and tier not in TIERS:
        raise BadRequest(f"tier must be one of {list(TIERS)}")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {list(STATUSES)}")
    for name in ("seller_id", "sku_id"):
        value = query.get(name)
        if value is not None and not 1 <= len(value) <= 128:
            raise BadRequest(f"{name} must be 1 to 128 characters")
    return ImageFilter(seller_id=query.get("seller_id") or None,
                       sku_id=query.get("sku_id") or None, tier=tier, status=status,
                       since=parse_since(query.get("since")),
                       until=parse_since(query.get("until")))


# --- documents --------------------------------------------------------------------------


def profile_ref(name: Any, version: Any) -> dict[str, str] | None:
    return {"name": str(name), "version": str(version)} if name else None


def report_document(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A quality_metrics row as a quality report."""
    if row is None:
        return None
    return {
        "profile": profile_ref(row["profile_name"], row["profile_version"]),
        "overall_score": number(row["overall_score"]),
        "tier": row["quality_tier"],
        "metrics": {name: number(row[column]) for name, column in _METRICS.items()},
        "issues": json_column(row.get("issues"), []),
        "recommendations": json_column(row.get("recommendations"), []),
    }


def tier_score(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"tier": row["quality_tier"], "score": number(row["overall_score"])}


def pick_reports(rows: Sequence[Mapping[str, Any]], profile_name: str | None,
                 profile_version: str | None) -> dict[str, Mapping[str, Any] | None]:
    """The before/after rows of the current profile version (else the newest ones)."""
    chosen: dict[str, Mapping[str, Any] | None] = {"before": None, "after": None}
    for kind in chosen:
        mine = [r for r in rows if r["metric_type"] == kind]
        current = [r for r in mine if (r["profile_name"], r["profile_version"])
                   == (profile_name, profile_version)]
        pool = current or mine
        chosen[kind] = max(pool, key=lambda r: r["created_at"]) if pool else None
    return chosen


def rendition_file(output: Mapping[str, Any]) -> str:
    return f"{output['name']}.{'jpg' if output['format'] == 'jpeg' else output['format']}"


def renditions(image_id: str, outputs: Iterable[Mapping[str, Any]], links: Links
               ) -> list[dict[str, Any]]:
    """The published current renditions (the stable aliases), with URLs."""
    result = []
    for output in outputs:
        if not output.get("alias"):
            continue
        file = rendition_file(output)
        result.append({
            "name": output["name"], "format": output["format"],
            "width": output.get("width"), "height": output.get("height"),
            "bytes": output.get("size_bytes"),
            "url": links.rendition(image_id, file),
            "cdn_url": output.get("url") or f"https://{links.cdn_domain}/enhanced/"
                                             f"{image_id}/current-{file}",
        })
    return result


def job_document(job: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]
                 ) -> dict[str, Any]:
    params = json_column(job.get("enhancement_params"), {})
    return {
        "job_id": job["job_id"],
        "status": job["status"],
        "profile": profile_ref(job["profile_name"], job["profile_version"]),
        "steps": [{"order": s["step_order"], "operation": s["step_name"],
                   "method": s["method"], "model_id": s["model_id"],
                   "success": bool(s["success"]), "latency_ms": s["latency_ms"],
                   "cost_usd": number(s["cost_usd"]), "details": s["details"]}
                  for s in sorted(steps, key=lambda s: s["step_order"])],
        "total_cost_usd": number(job["total_cost_usd"]) or 0.0,
        "ai_used": bool(job["ai_used"]),
        "processing_ms": job["processing_time_ms"],
        "kept_original": params.get("kept_original"),
        "kept_original_reason": params.get("kept_original_reason"),
        "completed_at": iso(job["completed_at"]),
    }


def current_job(image: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]
                ) -> Mapping[str, Any] | None:
    by_id = {j["job_id"]: j for j in jobs}
    if image.get("current_job_id") in by_id:
        return by_id[image["current_job_id"]]
    done = [j for j in jobs if j.get("completed_at")]
    return max(done, key=lambda j: j["completed_at"]) if done else None


def failure_document(image: Mapping[str, Any], letter: Mapping[str, Any] | None
                     ) -> dict[str, Any] | None:
    if image["status"] != "failed":
        return None
    return {"stage": letter["stage"] if letter else None,
            "reason": image.get("last_error") or (letter or {}).get("error_message"),
            "failed_at": iso(letter["failed_at"]) if letter else iso(image["updated_at"])}


def image_document(image: Mapping[str, Any], quality: Sequence[Mapping[str, Any]],
                   jobs: Sequence[Mapping[str, Any]],
                   steps: Mapping[str, Sequence[Mapping[str, Any]]],
                   letter: Mapping[str, Any] | None, links: Links) -> dict[str, Any]:
    """``GET /api/images/{id}``: everything known about one photo."""
    image_id = image["image_id"]
    job = current_job(image, jobs)
    reports = pick_reports(quality, image.get("current_profile_name") or
                           (job or {}).get("profile_name"),
                           image.get("current_profile_version") or
                           (job or {}).get("profile_version"))
    outputs = json_column((job or {}).get("enhancement_params"), {}).get("outputs", [])
    history = []
    for past in sorted(jobs, key=lambda j: j.get("completed_at") or datetime.min):
        ref = (past["profile_name"], past["profile_version"])
        before = next((r for r in quality if r["metric_type"] == "before"
                       and (r["profile_name"], r["profile_version"]) == ref), None)
        after = next((r for r in quality if r["metric_type"] == "after"
                      and r.get("job_id") == past["job_id"]), None)
        history.append({"job_id": past["job_id"],
                        "profile": profile_ref(*ref), "status": past["status"],
                        "before": tier_score(before), "after": tier_score(after),
                        "total_cost_usd": number(past["total_cost_usd"]) or 0.0,
                        "completed_at": iso(past["completed_at"])})
    return {
        "image_id": image_id,
        "seller_id": image["seller_id"],
        "sku_id": image["sku_id"],
        "product_group_id": image.get("product_group_id"),
        "filename": image.get("filename"),
        "status": image["status"],
        "created_at": iso(image["created_at"]),
        "updated_at": iso(image["updated_at"]),
        "original": {"url": links.original(image_id), "width": image["width"],
                     "height": image["height"], "format": image["format"],
                     "bytes": image["file_size_bytes"]},
        "quality": {"before": report_document(reports["before"]),
                    "after": report_document(reports["after"])},
        "job": job_document(job, steps.get(job["job_id"], ())) if job else None,
        "renditions": renditions(image_id, outputs, links),
        "history": history,
        "failure": failure_document(image, letter),
    }


def summary_document(row: Mapping[str, Any], links: Links) -> dict[str, Any]:
    """One photo in a list: the row of ``services.image_queries.list_images``."""
    image_id = row["image_id"]
    params = json_column(row.get("enhancement_params"), {})
    published = row["status"] in ("completed", "skipped") and row.get("current_job_id")
    return {
        "image_id": image_id,
        "seller_id": row["seller_id"],
        "sku_id": row["sku_id"],
        "filename": row.get("filename"),
        "status": row["status"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "before": ({"tier": row["before_tier"], "score": number(row["before_score"])}
                   if row.get("before_tier") else None),
        "after": ({"tier": row["after_tier"], "score": number(row["after_score"])}
                  if row.get("after_tier") else None),
        "total_cost_usd": number(row.get("total_cost_usd")),
        "kept_original": params.get("kept_original"),
        "kept_original_reason": params.get("kept_original_reason"),
        "issues": json_column(row.get("before_issues"), []),
        "steps": [s.get("operation") for s in params.get("steps", [])],
        "original_url": links.original(image_id),
        "thumbnail_url": links.rendition(image_id, "thumb.jpg") if published else None,
        "large_url": links.rendition(image_id, "large.jpg") if published else None,
    }


# --- statistics -------------------------------------------------------------------------


def usage_document(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /api/stats/usage`` from ai_usage_logs grouped by day, operation and model."""
    days = [{"day": str(r["budget_day"]), "operation": r["operation"],
             "model_id": r["model_id"], "calls": int(r["calls"]),
             "paid_calls": int(r["paid_calls"]), "cache_hits": int(r["cache_hits"]),
             "failures": int(r["failures"]), "spend_usd": round(number(r["spend"]) or 0, 6)}
            for r in rows]
    return {"days": days,
            "totals": {"calls": sum(d["calls"] for d in days),
                       "paid_calls": sum(d["paid_calls"] for d in days),
                       "cache_hits": sum(d["cache_hits"] for d in days),
                       "failures": sum(d["failures"] for d in days),
                       "spend_usd": round(sum(d["spend_usd"] for d in days), 6)}}


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def quality_document(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /api/stats/quality``: one row per photo with its current before/after."""
    tiers: dict[str, Counter] = {"before": Counter(), "after": Counter()}
    issues: Counter = Counter()
    by_day: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"b": [], "a": []})
    by_seller: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"b": [], "a": []})
    befores, afters = [], []
    for r in rows:
        day = r["created_at"].date().isoformat()
        for kind, tier, score, store in (("before", "before_tier", "before_score", "b"),
                                         ("after", "after_tier", "after_score", "a")):
            if r.get(tier):
                tiers[kind][r[tier]] += 1
            value = number(r.get(score))
            if value is not None:
                (befores if store == "b" else afters).append(value)
                by_day[day][store].append(value)
                by_seller[r["seller_id"]][store].append(value)
        issues.update(json_column(r.get("before_issues"), []))
    return {
        "photos": len(rows),
        "tiers": {kind: {t: counts.get(t, 0) for t in TIERS} for kind, counts in tiers.items()},
        "mean_score": {"before": _mean(befores), "after": _mean(afters)},
        "issues": dict(issues.most_common()),
        "by_day": [{"day": day, "photos": len(v["b"]), "mean_before": _mean(v["b"]),
                    "mean_after": _mean(v["a"])} for day, v in sorted(by_day.items())],
        "by_seller": sorted(({"seller_id": s, "photos": len(v["b"]),
                              "mean_before": _mean(v["b"]), "mean_after": _mean(v["a"])}
                             for s, v in by_seller.items()),
                            key=lambda d: (-d["photos"], d["seller_id"]))[:50],
    }


def batch_status_document(batch: Mapping[str, Any], counts: Mapping[str, int],
                          spend_usd: float, now: datetime) -> dict[str, Any]:
    """``GET /api/batch/{id}/status``: counts by state, progress and a linear ETA."""
    total = int(batch["total"])
    names = ("queued", "in_flight", "completed", "skipped", "failed", "cancelled")
    counts = {name: int(counts.get(name, 0)) for name in names}
    finished = counts["completed"] + counts["skipped"] + counts["failed"]
    settled = finished + counts["cancelled"]
    progress = round(settled / total, 4) if total else 1.0
    elapsed = (now - batch["created_at"]).total_seconds()
    remaining = counts["queued"] + counts["in_flight"]
    eta = (round(elapsed / finished * remaining, 1)
           if finished and remaining and batch["state"] == "running" else None)
    return {"batch_id": batch["batch_id"], "state": batch["state"], "total": total,
            "profile": profile_ref(batch["profile_name"], batch["profile_version"]),
            "counts": counts, "progress": progress, "eta_seconds": eta,
            "spend_usd": round(spend_usd, 6), "created_at": iso(batch["created_at"]),
            "finished_at": iso(batch.get("finished_at"))}


def batch_item_state(row: Mapping[str, Any]) -> str:
    """One batch item's state from its request and the photo's job."""
    if row["state"] == "cancelled":
        return "cancelled"
    if row["state"] == "queued":
        return "queued"
    if row.get("image_status") is None:  # the photo was deleted since
        return "cancelled"
    if row.get("job_status") in ("completed", "skipped"):
        return row["job_status"]
    if row.get("image_status") == "failed" or row.get("dead_lettered"):
        return "failed"
    return "in_flight"
