"""Shaping API answers from rows: filters, cursors, reports, batches."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from streams.api import documents as d

LINKS = d.Links(original=lambda i: f"/o/{i}", rendition=lambda i, f: f"/r/{i}/{f}",
                cdn_domain="cdn.example")
T0 = datetime(2026, 12, 1, 12, 0, 0)


def _quality(kind, name="default", version="2.1.0", tier="good", score=70.0, job=None,
             at=T0):
    return {"metric_type": kind, "profile_name": name, "profile_version": version,
            "quality_tier": tier, "overall_score": score, "blur_score": 120.0,
            "brightness": 0.5, "contrast": 0.2, "noise_level": 1.0, "brisque_score": 30.0,
            "background_complexity": 0.1, "width": 400, "height": 500,
            "file_size_bytes": 1000, "issues": '["blurry"]', "recommendations": "[]",
            "job_id": job, "created_at": at}


def _image(**changes):
    row = {"image_id": "a" * 32, "seller_id": "s", "sku_id": "k", "product_group_id": None,
           "filename": "x.jpg", "status": "completed", "created_at": T0, "updated_at": T0,
           "width": 400, "height": 500, "format": "jpeg", "file_size_bytes": 1000,
           "current_job_id": "j2", "current_profile_name": "premium",
           "current_profile_version": "1.0", "last_error": None}
    row.update(changes)
    return row


def _job(job_id, name, version, at, outputs=()):
    return {"job_id": job_id, "status": "completed", "profile_name": name,
            "profile_version": version, "total_cost_usd": Decimal("0.040000"),
            "ai_used": 1, "processing_time_ms": 300, "completed_at": at,
            "enhancement_params": d.json.dumps({"kept_original": False, "outputs": list(outputs),
                                                "steps": [{"operation": "upscale"}]})}


def test_filters_are_checked_and_parsed():
    f = d.parse_filter({"seller_id": "s", "tier": "good", "since": "2026-12-01T00:00:00Z"})
    assert (f.seller_id, f.tier, f.since) == ("s", "good", datetime(2026, 12, 1))
    for bad in ({"tier": "great"}, {"status": "done"}, {"since": "yesterday"},
                {"colour": "red"}, {"seller_id": "x" * 129}):
        with pytest.raises(d.BadRequest):
            d.parse_filter(bad)
    for bad in ("0", "201", "ten", "-1"):
        with pytest.raises(d.BadRequest):
            d.parse_limit(bad)
    assert d.parse_limit(None) == d.DEFAULT_PAGE and d.parse_limit("200") == 200


def test_a_cursor_round_trips_and_a_forged_one_is_refused():
    cursor = d.encode_cursor(T0, 42)
    assert d.decode_cursor(cursor) == (T0, 42)
    assert d.decode_cursor(None) is None
    for bad in ("!!!", "bm90IGEgY3Vyc29y"):
        with pytest.raises(d.BadRequest):
            d.decode_cursor(bad)


def test_the_image_document_shows_the_current_profile_and_the_history():
    outputs = [{"name": "large", "format": "jpeg", "alias": True, "width": 800,
                "height": 1000, "size_bytes": 5, "url": "https://cdn.example/x"},
               {"name": "large", "format": "jpeg", "alias": False}]
    jobs = [_job("j1", "default", "2.1.0", T0), _job("j2", "premium", "1.0",
                                                     T0 + timedelta(hours=1), outputs)]
    quality = [_quality("before"), _quality("after", job="j1", score=75.0),
               _quality("before", "premium", "1.0", "fair", 55.0),
               _quality("after", "premium", "1.0", "excellent", 85.0, job="j2")]
    steps = {"j2": [{"step_order": 1, "step_name": "upscale", "method": "ai",
                     "model_id": "m", "success": 1, "latency_ms": 9,
                     "cost_usd": Decimal("0.04"), "details": None},
                    {"step_order": 0, "step_name": "denoise", "method": "local",
                     "model_id": None, "success": 1, "latency_ms": 3,
                     "cost_usd": Decimal("0"), "details": None}]}
    doc = d.image_document(_image(), quality, jobs, steps, None, LINKS)
    assert doc["quality"]["before"]["tier"] == "fair"
    assert doc["quality"]["after"]["overall_score"] == 85.0
    assert doc["quality"]["before"]["issues"] == ["blurry"]
    assert doc["job"]["job_id"] == "j2" and doc["job"]["total_cost_usd"] == 0.04
    assert [s["operation"] for s in doc["job"]["steps"]] == ["denoise", "upscale"]
    assert doc["renditions"] == [{"name": "large", "format": "jpeg", "width": 800,
                                  "height": 1000, "bytes": 5,
                                  "url": "/r/" + "a" * 32 + "/large.jpg",
                                  "cdn_url": "https://cdn.example/x"}]
    assert [(h["profile"]["name"], h["after"]["tier"]) for h in doc["history"]] == [
        ("default", "good"), ("premium", "excellent")]
    assert doc["failure"] is None
    assert doc["created_at"] == "2026-12-01T12:00:00.000Z"


def test_a_failed_photo_says_where_and_why():
    letter = {"stage": "assess", "error_message": "corrupt", "failed_at": T0}
    doc = d.image_document(_image(status="failed", current_job_id=None,
                                  last_error="ObjectMissing: gone"), [], [], {}, letter,
                           LINKS)
    assert doc["failure"] == {"stage": "assess", "reason": "ObjectMissing: gone",
                              "failed_at": "2026-12-01T12:00:00.000Z"}
    assert doc["job"] is None and doc["renditions"] == []


def test_a_summary_links_renditions_only_once_published():
    row = {**_image(status="analyzed", current_job_id=None), "id": 1, "before_tier": "good",
           "before_score": 61.0, "before_issues": None, "after_tier": None,
           "after_score": None, "total_cost_usd": None, "enhancement_params": None}
    summary = d.summary_document(row, LINKS)
    assert summary["thumbnail_url"] is None and summary["after"] is None
    assert summary["before"] == {"tier": "good", "score": 61.0}
    published = d.summary_document({**row, "status": "completed", "current_job_id": "j"},
                                   LINKS)
    assert published["large_url"] == "/r/" + "a" * 32 + "/large.jpg"


def test_quality_statistics_count_tiers_and_average_scores():
    rows = [{"seller_id": "s1", "created_at": T0, "before_tier": "fair", "before_score": 50,
             "after_tier": "good", "after_score": 70, "before_issues": '["blurry"]'},
            {"seller_id": "s2", "created_at": T0, "before_tier": "good", "before_score": 64,
             "after_tier": None, "after_score": None, "before_issues": None}]
    doc = d.quality_document(rows)
    assert doc["photos"] == 2
    assert doc["tiers"]["before"] == {"excellent": 0, "good": 1, "fair": 1, "poor": 0}
    assert doc["mean_score"] == {"before": 57.0, "after": 70.0}
    assert doc["issues"] == {"blurry": 1}
    assert doc["by_day"] == [{"day": "2026-12-01", "photos": 2, "mean_before": 57.0,
                              "mean_after": 70.0}]


def test_batch_items_and_status():
    sent = {"state": "sent", "image_status": "completed", "job_status": None,
            "dead_lettered": 0}
    assert d.batch_item_state({**sent, "job_status": "completed"}) == "completed"
    assert d.batch_item_state(sent) == "in_flight"
    assert d.batch_item_state({**sent, "dead_lettered": 1}) == "failed"
    assert d.batch_item_state({**sent, "image_status": None}) == "cancelled"
    assert d.batch_item_state({"state": "queued"}) == "queued"
    batch = {"batch_id": "b", "state": "running", "total": 10, "profile_name": "p",
             "profile_version": "1", "created_at": T0, "finished_at": None}
    status = d.batch_status_document(batch, {"completed": 4, "in_flight": 2, "queued": 4},
                                     0.12, T0 + timedelta(seconds=40))
    assert status["progress"] == 0.4 and status["eta_seconds"] == 60.0
    assert status["counts"]["cancelled"] == 0 and status["spend_usd"] == 0.12
