"""How the CLI shows the API's documents: photos, one photo in full, batches.

Pure functions of the JSON documents (``streams/api_client.py`` fetches them), so the
formatting is tested with plain dicts. Lines that carry ids or URLs are printed whole
(never wrapped or cut), so they can be copied and grepped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def usd(value: Any) -> str:
    return f"${float(value or 0):.4f}"


def tier_score(point: Mapping[str, Any] | None) -> str:
    """``good 71.2`` from {tier, score} or a quality report {tier, overall_score} (one
    decimal: most moves are a few points)."""
    if not point:
        return "-"
    value = point.get("score", point.get("overall_score"))
    if value is None:
        return str(point.get("tier"))
    return f"{point.get('tier') or '?'} {value:.1f}"


def tier_move(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """``poor 38.4 -> good 71.0 (+32.6)``; just the before when there is no after yet."""
    if not after:
        return tier_score(before)
    text = f"{tier_score(before)} -> {tier_score(after)}"
    b = before and before.get("score", before.get("overall_score"))
    a = after.get("score", after.get("overall_score"))
    if b is not None and a is not None:
        text += f" ({a - b:+.1f})"
    return text


def _plain(console: Console, line: str, style: str | None = None) -> None:
    console.print(line, soft_wrap=True, highlight=False, markup=False, style=style)


def large_url(detail: Mapping[str, Any]) -> str | None:
    """The published large JPEG's URL (the API's URL opens on this stack; the CDN one in
    production), else any rendition's."""
    renditions = detail.get("renditions") or []
    for wanted in (("large", "jpeg"), ("large", None), (None, None)):
        for r in renditions:
            if wanted[0] in (None, r.get("name")) and wanted[1] in (None, r.get("format")):
                return r.get("url") or r.get("cdn_url")
    return None


def completion(detail: Mapping[str, Any]) -> dict[str, Any]:
    """What ``upload --wait`` reports of one photo, from GET /api/images/{id}."""
    quality = detail.get("quality") or {}
    job = detail.get("job") or {}
    failure = detail.get("failure") or {}
    before, after = quality.get("before"), quality.get("after")
    return {
        "image_id": detail.get("image_id"),
        "status": detail.get("status"),
        "before": {"tier": before["tier"], "score": before["overall_score"]} if before else None,
        "after": {"tier": after["tier"], "score": after["overall_score"]} if after else None,
        "cost_usd": job.get("total_cost_usd") or 0.0,
        "url": large_url(detail),
        "kept_original_reason": job.get("kept_original_reason") if job.get("kept_original")
        else None,
        "failure": failure.get("reason"),
    }


def print_completions(rows: list[tuple[str, dict[str, Any]]], console: Console) -> None:
    """One line per photo: file, status, tier before -> after, AI cost, URL; a second
    line says why an original was kept or what failed."""
    if not rows:
        return
    width = max(len(name) for name, _ in rows)
    moves = [tier_move(r["before"], r["after"]) for _, r in rows]
    move_width = max(len("tier before -> after"), *(len(m) for m in moves))
    _plain(console, f"{'file':{width}}  {'status':9}  {'tier before -> after':{move_width}}  "
                    f"{'AI cost':>9}  url", style="bold")
    for (name, r), move in zip(rows, moves, strict=True):
        _plain(console, f"{name:{width}}  {r['status'] or '-':9}  {move:{move_width}}  "
                        f"{usd(r['cost_usd']):>9}  {r['url'] or '-'}")
        if r.get("kept_original_reason"):
            _plain(console, f"{'':{width}}  original kept: {r['kept_original_reason']}")
        if r.get("failure"):
            _plain(console, f"{'':{width}}  failed: {r['failure']}")


def print_images(page: Mapping[str, Any], console: Console) -> None:
    """``imgstream images``: one line per photo, newest first."""
    items = page.get("items") or []
    if not items:
        console.print("no photos match")
        return
    table = Table("image id", "seller", "sku", "status", "tier before -> after", "AI cost",
                  "notes", box=None, pad_edge=False)
    table.columns[0].no_wrap = True
    for item in items:
        notes = []
        if item.get("kept_original"):
            notes.append(f"original kept: {item.get('kept_original_reason') or '?'}")
        if item.get("issues"):
            notes.append("issues: " + ", ".join(item["issues"]))
        table.add_row(item["image_id"], item.get("seller_id") or "", item.get("sku_id") or "",
                      item.get("status") or "", tier_move(item.get("before"), item.get("after")),
                      usd(item.get("total_cost_usd")), "; ".join(notes))
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"more: --cursor {page['next_cursor']}", soft_wrap=True, highlight=False)


def print_detail(doc: Mapping[str, Any], console: Console) -> None:
    """``imgstream show ID``: identity, quality before/after, the job's steps, renditions,
    history and any failure."""
    _plain(console, f"{doc['image_id']}  {doc.get('status')}", style="bold")
    _plain(console, f"seller {doc.get('seller_id')}  sku {doc.get('sku_id')}  "
                    f"file {doc.get('filename') or '-'}  uploaded {doc.get('created_at')}")
    original = doc.get("original") or {}
    if original:
        _plain(console, f"original {original.get('width')}x{original.get('height')} "
                        f"{original.get('format')} {original.get('bytes')} bytes  "
                        f"{original.get('url')}")
    quality = doc.get("quality") or {}
    before, after = quality.get("before"), quality.get("after")
    _plain(console, f"quality  {tier_move(before, after)}")
    if before or after:
        metrics = Table("metric", "before", "after", box=None, pad_edge=False)
        names = list(((before or after) or {}).get("metrics") or {})
        for name in names:
            metrics.add_row(name, _metric(before, name), _metric(after, name))
        console.print(metrics)
        for label, report in (("issues before", before), ("issues after", after)):
            if report and report.get("issues"):
                _plain(console, f"{label}: {', '.join(report['issues'])}")
    job = doc.get("job")
    if job:
        profile = job.get("profile") or {}
        _plain(console, f"job {job.get('job_id')}  {job.get('status')}  profile "
                        f"{profile.get('name')} {profile.get('version')}  AI cost "
                        f"{usd(job.get('total_cost_usd'))}  {job.get('processing_ms') or 0} ms")
        steps = Table("#", "operation", "method", "model", "ok", "ms", "cost", "details",
                      box=None, pad_edge=False)
        for step in sorted(job.get("steps") or [], key=lambda s: s.get("order", 0)):
            steps.add_row(str(step.get("order")), step.get("operation") or "",
                          step.get("method") or "", step.get("model_id") or "",
                          "yes" if step.get("success") else "NO",
                          str(step.get("latency_ms") or ""), usd(step.get("cost_usd")),
                          str(step.get("details") or ""))
        console.print(steps)
        if job.get("kept_original"):
            _plain(console, f"original kept: {job.get('kept_original_reason') or '?'}")
    for r in doc.get("renditions") or []:
        _plain(console, f"rendition {r.get('name')}.{r.get('format')}  {r.get('url')}"
                        + (f"  cdn {r['cdn_url']}" if r.get("cdn_url") else ""))
    history = doc.get("history") or []
    if len(history) > 1:
        _plain(console, "history:")
        for h in history:
            profile = h.get("profile") or {}
            _plain(console, f"  {h.get('completed_at') or '-'}  {profile.get('name')} "
                            f"{profile.get('version')}  {h.get('status')}  "
                            f"{tier_move(h.get('before'), h.get('after'))}  "
                            f"{usd(h.get('total_cost_usd'))}")
    failure = doc.get("failure")
    if failure:
        _plain(console, f"failed at {failure.get('stage')} ({failure.get('failed_at')}): "
                        f"{failure.get('reason')}", style="red")


def _metric(report: Mapping[str, Any] | None, name: str) -> str:
    if not report:
        return "-"
    value = (report.get("metrics") or {}).get(name)
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def batch_line(status: Mapping[str, Any]) -> str:
    """``imgstream batch status``: one line a person (or grep) reads."""
    counts = status.get("counts") or {}
    eta = status.get("eta_seconds")
    parts = ", ".join(f"{counts.get(k, 0)} {k.replace('_', ' ')}"
                      for k in ("queued", "in_flight", "completed", "skipped", "failed",
                                "cancelled"))
    return (f"batch {status.get('batch_id')}: {status.get('state')}, "
            f"{100 * float(status.get('progress') or 0):.0f}% of {status.get('total')} "
            f"({parts}); spent {usd(status.get('spend_usd'))}"
            + (f"; about {eta:.0f}s left" if eta is not None and status.get("state") == "running"
               else ""))


def print_batch_results(page: Mapping[str, Any], console: Console) -> None:
    items = page.get("items") or []
    if not items:
        console.print("no results yet")
    for item in items:
        _plain(console, f"{item.get('image_id')}  {item.get('state') or '-':10}  "
                        f"{tier_move(item.get('before'), item.get('after')):28}  "
                        f"{usd(item.get('cost_usd'))}  {item.get('large_url') or '-'}")
    if page.get("next_cursor"):
        _plain(console, f"more: --cursor {page['next_cursor']}")
