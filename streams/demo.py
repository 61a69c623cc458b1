"""``imgstream demo``: the embedded stack, one worker and the generated sample batch.

What a newcomer sees: the stack starting, the worker getting ready, the samples being
uploaded with a progress bar, then one line per sample with its image id, status and
size as recorded in MySQL, and how to read the events with kcat. The worker keeps
serving (upload more with ``imgstream upload``) until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import signal
import time

from rich.console import Console
from rich.table import Table

from imaging.samples import generate_sample_batch
from infra.stack import Stack
from infra.workers import start_worker
from streams.bulk_upload import run_bulk_upload
from streams.settings import get_settings, reload_settings

DEMO_SELLER = "demo-seller"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(console: Console, sample_count: int = 12, keep_serving: bool = True) -> int:
    # Ctrl-C and `kill` both stop the worker cleanly, even when started from a script
    # that left SIGINT ignored (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = get_settings()
    stack = Stack(settings)
    console.rule("[bold]1. embedded stack")
    started = time.monotonic()
    stack.up(echo=console.print)
    console.print(f"stack ready in {time.monotonic() - started:.1f}s (logs: {stack.logs_dir})")

    console.rule("[bold]2. worker")
    settings = reload_settings()  # stack up may have written stack.env
    worker = start_worker(settings.web_port, settings.logs_dir / "worker-demo.log")
    stack.register_process(f"worker-{settings.web_port}", worker.process.pid)
    try:
        ready_after = worker.wait_ready()
        console.print(f"worker ready at {worker.base_url} in {ready_after:.1f}s "
                      f"(log: {worker.log_path})")

        console.rule("[bold]3. sample batch")
        samples_dir = settings.home / "samples"
        samples_dir.mkdir(parents=True, exist_ok=True)
        for sample in generate_sample_batch(count=sample_count):
            (samples_dir / sample.name).write_bytes(sample.data)
        summary = asyncio.run(run_bulk_upload(
            paths=[samples_dir], api=worker.base_url, seller_id=DEMO_SELLER, sku_id=None,
            product_group_id="demo", api_key=next(iter(settings.api_key_set), None),
            concurrency=4, console=console,
        ))

        console.rule("[bold]4. results")
        image_ids = [r.body["image_id"] for r in summary.results if r.body.get("image_id")]
        rows = asyncio.run(_wait_for_results(image_ids, timeout=180))
        table = Table("sample", "status", "tier before -> after", "steps", "AI $")
        example_url = None
        for result in summary.results:
            row = rows.get(result.body.get("image_id"), {})
            before = _tier(row.get("before_tier"), row.get("before_score"))
            after = _tier(row.get("after_tier"), row.get("after_score"))
            if row.get("kept_original") in (1, "true", True):
                after += " (original kept)"
            table.add_row(result.path.name, row.get("status", result.outcome),
                          f"{before} -> {after}" if row.get("after_tier") else before,
                          (row.get("steps") or "").replace(" ", ","),
                          f"{float(row.get('cost_usd') or 0):.2f}")
            example_url = example_url or row.get("cloudfront_url")
        console.print(table)
        if example_url:
            console.print(f"Published e.g. at {example_url}")
        _print_costs(console, worker.base_url)
        console.print(f"Originals are in s3://{settings.originals_bucket}/originals/, "
                      f"renditions in s3://{settings.enhanced_bucket}/enhanced/<image_id>/.")
        topic = settings.topic_name("images.assessed")
        console.print(
            f"{len(rows)} rows in {settings.db_name}.product_images for this batch.\n"
            f"Read the reports: scripts/kcat -b {settings.kafka_bootstrap} -C -t {topic} "
            "-o beginning -e\n"
            f"Metrics:          curl {worker.base_url}/metrics\n"
            f"Upload more:      .venv/bin/imgstream upload --seller me --wait PATH...\n"
            f"One photo:        .venv/bin/imgstream show IMAGE_ID")
        # Last: where to look at all of it (the page reads the same API as the CLI).
        console.print(f"[bold]Dashboard:[/]        {worker.base_url}/dashboard", soft_wrap=True)
        if keep_serving:
            console.print("[bold green]Serving.[/] Ctrl-C stops the worker; "
                          "`.venv/bin/imgstream stack down` stops the stack.")
            while worker.process.poll() is None:
                time.sleep(0.5)
            console.print(f"[red]worker exited ({worker.process.returncode})[/]; "
                          f"see {worker.log_path}")
            return 1
        return 0 if summary.failed == 0 else 1
    except KeyboardInterrupt:
        console.print("stopping the worker...")
        return 0
    finally:
        worker.stop()
        stack.unregister_process(f"worker-{settings.web_port}")


def _print_costs(console: Console, base_url: str) -> None:
    """Today's AI budget as the day's owner sees it (GET /api/stats/costs)."""
    import json
    import urllib.request

    try:
        from streams.auth import admin_headers
        from streams.settings import get_settings

        request = urllib.request.Request(f"{base_url}/api/stats/costs",
                                         headers=admin_headers(get_settings()))
        with urllib.request.urlopen(request, timeout=10) as response:
            c = json.load(response)
    except (OSError, ValueError):
        return
    console.print(f"AI budget {c['day']}: ${c['settled_usd']:.2f} spent of "
                  f"${c['cap_usd']:.2f} ({c['paid_calls']} paid Bedrock calls, emulated; "
                  f"${c['remaining_usd']:.2f} left). Details: curl {base_url}/api/stats/costs")


def _tier(tier: str | None, score: float | None) -> str:
    return f"{tier} {score:.0f}" if tier and score is not None else (tier or "-")


async def _wait_for_results(image_ids: list[str], timeout: float) -> dict[str, dict]:
    """Rows of these images once all are completed (or whatever is there at the timeout)."""
    from services.database import Database

    if not image_ids:
        return {}
    db = await Database.connect(get_settings())
    marks = ", ".join(["%s"] * len(image_ids))
    query = (
        "SELECT p.image_id, p.status, p.cloudfront_url,"
        " b.quality_tier AS before_tier, b.overall_score AS before_score,"
        " a.quality_tier AS after_tier, a.overall_score AS after_score,"
        " (SELECT GROUP_CONCAT(CONCAT(s.step_name, IF(s.method = 'ai', '(ai)', ''))"
        "   ORDER BY s.step_order SEPARATOR ' ')"
        "  FROM enhancement_jobs j JOIN processing_steps s ON s.job_id = j.job_id"
        "  WHERE j.image_id = p.image_id) AS steps,"
        " (SELECT j.total_cost_usd FROM enhancement_jobs j WHERE j.image_id = p.image_id"
        "  LIMIT 1) AS cost_usd,"
        " (SELECT JSON_EXTRACT(j.enhancement_params, '$.kept_original')"
        "  FROM enhancement_jobs j WHERE j.image_id = p.image_id LIMIT 1) AS kept_original"
        " FROM product_images p"
        " LEFT JOIN quality_metrics b ON b.image_id = p.image_id AND b.metric_type = 'before'"
        " LEFT JOIN quality_metrics a ON a.image_id = p.image_id AND a.metric_type = 'after'"
        f" WHERE p.image_id IN ({marks})"
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = {r["image_id"]: r for r in await db.fetchall(query, image_ids)}
            done = sum(1 for r in rows.values() if r["status"] in ("completed", "skipped"))
            if done == len(set(image_ids)) or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.5)
    finally:
        await db.close()
