"""``imgstream upload``: a concurrent client of the upload API with progress and summary.

Goes through ``POST /api/images/upload`` like any seller tool, so validation, storage and
events follow the one ingest path. Transient failures (503, connection errors) are
retried; rejections are reported with the API's reason.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
_SKU_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


@dataclass
class UploadOutcome:
    path: Path
    outcome: str  # created | duplicate | rejected | failed
    status: int | None
    body: dict
    attempts: int


@dataclass
class UploadSummary:
    results: list[UploadOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def created(self) -> int:
        return self.count("created")

    @property
    def duplicate(self) -> int:
        return self.count("duplicate")

    @property
    def rejected(self) -> int:
        return self.count("rejected")

    @property
    def failed(self) -> int:
        return self.count("failed")


def collect_files(paths: list[Path]) -> list[Path]:
    """Files named explicitly, plus images found under folders, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(path)
    return files


def sku_from_path(path: Path) -> str:
    return _SKU_UNSAFE.sub("-", path.stem).strip("-")[:64] or "sku"


async def upload_one(
    session: aiohttp.ClientSession, url: str, path: Path, form_fields: dict[str, str],
    api_key: str | None, attempts: int = 4,
) -> UploadOutcome:
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        return UploadOutcome(path, "failed", None, {"reason": str(exc)}, 0)
    last: UploadOutcome | None = None
    for attempt in range(1, attempts + 1):
        form = aiohttp.FormData()
        for name, value in form_fields.items():
            form.add_field(name, value)
        form.add_field("file", data, filename=path.name)
        try:
            async with session.post(url, data=form, headers=headers) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {"reason": (await response.text())[:200]}
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            last = UploadOutcome(path, "failed", None, {"reason": str(exc) or type(exc).__name__},
                                 attempt)
        else:
            if status in (200, 201):
                return UploadOutcome(path, "duplicate" if status == 200 else "created",
                                     status, body, attempt)
            if status < 500 and status != 429:
                return UploadOutcome(path, "rejected", status, body, attempt)
            last = UploadOutcome(path, "failed", status, body, attempt)
        await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    assert last is not None
    return last


async def run_bulk_upload(
    paths: list[Path], api: str, seller_id: str, sku_id: str | None,
    product_group_id: str | None, api_key: str | None, concurrency: int,
    console: Console, show_table: bool = True,
) -> UploadSummary:
    files = collect_files(paths)
    summary = UploadSummary()
    url = api.rstrip("/") + "/api/images/upload"
    semaphore = asyncio.Semaphore(max(1, concurrency))
    timeout = aiohttp.ClientTimeout(total=120)
    columns = (TextColumn("uploading"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:.1f}/s"), TimeRemainingColumn())
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("upload", total=len(files), rate=0.0)
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def worker(path: Path) -> None:
                fields = {"seller_id": seller_id, "sku_id": sku_id or sku_from_path(path)}
                if product_group_id:
                    fields["product_group_id"] = product_group_id
                async with semaphore:
                    result = await upload_one(session, url, path, fields, api_key)
                summary.results.append(result)
                done = len(summary.results)
                progress.update(task, advance=1,
                                rate=done / max(loop.time() - started, 1e-6))

            await asyncio.gather(*(worker(p) for p in files))
    summary.results.sort(key=lambda r: str(r.path))
    if show_table:
        print_summary(summary, console)
    return summary


def print_summary(summary: UploadSummary, console: Console) -> None:
    problems = [r for r in summary.results if r.outcome in ("rejected", "failed")]
    if problems:
        table = Table("file", "outcome", "status", "reason")
        for r in problems:
            table.add_row(r.path.name, r.outcome, str(r.status or ""),
                          str(r.body.get("reason", "")))
        console.print(table)
    console.print(
        f"[bold]{len(summary.results)} files:[/] {summary.created} created, "
        f"{summary.duplicate} already known, {summary.rejected} rejected, "
        f"{summary.failed} failed"
    )
