"""How the CLI prints the API's documents (plain dicts shaped as the API contract)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from streams.bulk_upload import collect_files
from streams.cli_views import (
    batch_line,
    completion,
    print_completions,
    print_detail,
    print_images,
    tier_move,
)

URL = ("http://127.0.0.1:16066/api/images/" + "a" * 32 + "/renditions/large.jpg?expires=1&sig="
       + "f" * 64)

DETAIL = {
    "image_id": "a" * 32, "seller_id": "s1", "sku_id": "mug-1", "product_group_id": None,
    "filename": "mug.jpg", "status": "completed", "created_at": "2026-12-05T10:00:00Z",
    "updated_at": "2026-12-05T10:00:09Z",
    "original": {"url": "http://x/original", "width": 1200, "height": 900, "format": "jpeg",
                 "bytes": 123456},
    "quality": {
        "before": {"profile": {"name": "default", "version": "3"}, "overall_score": 38.4,
                   "tier": "poor", "metrics": {"blur": 41.2, "brightness": 97.0},
                   "issues": ["blurry"], "recommendations": []},
        "after": {"profile": {"name": "default", "version": "3"}, "overall_score": 71.0,
                  "tier": "good", "metrics": {"blur": 180.5, "brightness": 120.0},
                  "issues": [], "recommendations": []}},
    "job": {"job_id": "j1", "status": "completed", "profile": {"name": "default", "version": "3"},
            "steps": [{"order": 2, "operation": "sharpen", "method": "local", "model_id": None,
                       "success": True, "latency_ms": 12, "cost_usd": 0, "details": ""},
                      {"order": 1, "operation": "background", "method": "ai",
                       "model_id": "amazon.titan-image-generator-v2:0", "success": True,
                       "latency_ms": 800, "cost_usd": 0.04, "details": ""}],
            "total_cost_usd": 0.04, "ai_used": True, "processing_ms": 900,
            "kept_original": False, "kept_original_reason": None, "completed_at": "x"},
    "renditions": [{"name": "thumb", "format": "jpeg", "url": "http://x/thumb", "cdn_url": None},
                   {"name": "large", "format": "webp", "url": "http://x/large.webp",
                    "cdn_url": None},
                   {"name": "large", "format": "jpeg", "url": URL, "cdn_url": None}],
    "history": [], "failure": None,
}


def _console() -> Console:
    return Console(width=80, record=True, color_system=None)


def test_tier_move_says_where_a_photo_went():
    assert tier_move({"tier": "poor", "score": 38.4}, {"tier": "good", "score": 71.0}) == \
        "poor 38.4 -> good 71.0 (+32.6)"
    assert tier_move({"tier": "good", "overall_score": 70.2}, None) == "good 70.2"
    assert tier_move(None, None) == "-"


def test_completion_reads_the_large_jpeg_and_the_cost():
    row = completion(DETAIL)
    assert row["before"] == {"tier": "poor", "score": 38.4}
    assert row["after"] == {"tier": "good", "score": 71.0}
    assert row["cost_usd"] == 0.04 and row["url"] == URL and row["kept_original_reason"] is None


def test_completion_lines_keep_urls_whole_and_say_why_an_original_was_kept():
    kept = {**DETAIL, "job": {**DETAIL["job"], "kept_original": True,
                              "kept_original_reason": "the enhancement scored lower"}}
    console = _console()
    print_completions([("mug.jpg", completion(DETAIL)), ("cup.jpg", completion(kept))], console)
    text = console.export_text()
    assert URL in text  # longer than the 80 columns, yet on one line
    assert "poor 38.4 -> good 71.0 (+32.6)" in text and "$0.0400" in text
    assert "original kept: the enhancement scored lower" in text


def test_show_lists_steps_in_order_with_model_and_cost():
    console = Console(width=160, record=True, color_system=None)  # the CLI's piped width
    print_detail(DETAIL, console)
    text = console.export_text()
    assert text.index("background") < text.index("sharpen")
    assert "amazon.titan-image-generator-v2:0" in text and "$0.0400" in text
    assert "poor 38.4 -> good 71.0 (+32.6)" in text and "blur" in text
    failed = {**DETAIL, "status": "failed", "job": None,
              "failure": {"stage": "assess", "reason": "corrupt JPEG", "failed_at": "t"}}
    console = _console()
    print_detail(failed, console)
    assert "failed at assess" in console.export_text()


def test_images_lists_ids_whole_and_the_next_page():
    console = Console(width=160, record=True, color_system=None)
    print_images({"items": [{"image_id": "b" * 32, "seller_id": "s1", "sku_id": "k",
                             "status": "completed", "before": {"tier": "fair", "score": 50},
                             "after": {"tier": "good", "score": 66}, "total_cost_usd": 0,
                             "kept_original": True, "kept_original_reason": "gate: halo",
                             "issues": ["noisy"]}], "next_cursor": "abc"}, console)
    text = console.export_text()
    assert "b" * 32 in text and "fair 50.0 -> good 66.0 (+16.0)" in text
    assert "original kept: gate: halo" in text and "--cursor abc" in text


def test_batch_line_counts_everything():
    line = batch_line({"batch_id": "b1", "state": "running", "total": 10,
                       "counts": {"queued": 2, "in_flight": 1, "completed": 6, "skipped": 0,
                                  "failed": 1, "cancelled": 0},
                       "progress": 0.7, "eta_seconds": 12.0, "spend_usd": 0.08})
    assert line.startswith("batch b1: running, 70% of 10")
    assert "6 completed" in line and "1 failed" in line and "12s left" in line


def test_collect_files_says_why_a_file_is_left_out(tmp_path: Path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    files, skipped = collect_files([tmp_path, tmp_path / "missing.png"])
    assert files == [tmp_path / "a.jpg"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons[".DS_Store"] == "hidden file"
    assert reasons["notes.txt"].startswith("not a supported image type (.txt")
    assert reasons["missing.png"] == "no such file or folder"
