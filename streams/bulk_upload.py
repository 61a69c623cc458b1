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

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
_SKU_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


@dataclass
class UploadOutcome:
    path: Path
    outcome: str  # created | duplicate | rejected | failed
    status: int | None
    body: dict
    attempts: int


@dataclass(frozen=True)
class Skipped:
    """A file not uploaded, and why."""

    path: Path
    reason: str


@dataclass
class UploadSummary:
    results: list[UploadOutcome] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

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


def collect_files(paths: list[Path]) -> tuple[list[Path], list[Skipped]]:
    """Files named explicitly, plus images found under folders, in a stable order; and
    the files left out, with the reason. A file named explicitly is always sent: the API
    judges its content, whatever its name."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    supported = " ".join(sorted(IMAGE_SUFFIXES))
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                if found.name.startswith("."):
                    skipped.append(Skipped(found, "hidden file"))
                elif found.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(Skipped(found, f"not a supported image type "
                                                  f"({found.suffix or 'no suffix'}; "
                                                  f"supported: {supported})"))
                else:
                    files.append(found)
        elif path.is_file():
            files.append(path)
        else:
            skipped.append(Skipped(path, "no such file or folder"))
    return files, skipped


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
                retry_after = _seconds(response.headers.get("Retry-After"))
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
            if status == 429:  # rate limited: come back when the API says, not sooner
                await asyncio.sleep(max(retry_after, 0.5 * 2 ** (attempt - 1)))
                continue
        await asyncio.sleep(0.5 * 2 ** (attempt - 1))
    assert last is not None
    return last


def _seconds(retry_after: str | None) -> float:
    """A Retry-After header in seconds (an HTTP date or garbage counts as one second)."""
    try:
        return max(0.0, float(retry_after or 1))
    except ValueError:
        return 1.0


async def run_bulk_upload(
    paths: list[Path], api: str, seller_id: str, sku_id: str | None,
    product_group_id: str | None, api_key: str | None, concurrency: int,
    console: Console, show_table: bool = True,
) -> UploadSummary:
    files, skipped = collect_files(paths)
    summary = UploadSummary(skipped=skipped)
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


def reason_of(body: dict) -> str:
    return str(body.get("message") or body.get("reason") or body.get("error") or "")


def print_files(summary: UploadSummary, console: Console) -> None:
    """One line per file with its image id (or why it has none), then the skipped files.
    Plain aligned lines rather than a table: ids and reasons are never wrapped or cut."""
    if summary.results:
        width = max(len(r.path.name) for r in summary.results)
        console.print(f"{'file':{width}}  {'outcome':9}  {'image id':32}  status",
                      style="bold", soft_wrap=True, highlight=False)
        for r in summary.results:
            image_id = r.body.get("image_id") or "-"
            if r.outcome in ("created", "duplicate"):
                detail = str(r.body.get("status", ""))
            else:
                detail = f"{r.status or ''} {reason_of(r.body)}".strip()
            console.print(f"{r.path.name:{width}}  {r.outcome:9}  {image_id:32}  {detail}",
                          soft_wrap=True, highlight=False, markup=False)
    for s in summary.skipped:
        console.print(f"skipped {s.path}: {s.reason}", soft_wrap=True, highlight=False,
                      markup=False)


def print_summary(summary: UploadSummary, console: Console) -> None:
    print_files(summary, console)
    console.print(
        f"[bold]{len(summary.results)} files:[/] {summary.created} created, "
        f"{summary.duplicate} already known, {summary.rejected} rejected, "
        f"{summary.failed} failed" + (f", {len(summary.skipped)} skipped"
                                      if summary.skipped else "")
    )


def summary_document(summary: UploadSummary) -> dict:
    """``imgstream upload --json``: every file, its outcome and image id; skipped files."""
    return {
        "files": [{"file": str(r.path), "outcome": r.outcome, "http_status": r.status,
                   "image_id": r.body.get("image_id"), "status": r.body.get("status"),
                   "duplicate": r.outcome == "duplicate",
                   "reason": None if r.outcome in ("created", "duplicate") else reason_of(r.body)}
                  for r in summary.results],
        "skipped": [{"file": str(s.path), "reason": s.reason} for s in summary.skipped],
        "counts": {"created": summary.created, "duplicate": summary.duplicate,
                   "rejected": summary.rejected, "failed": summary.failed,
                   "skipped": len(summary.skipped)},
    }
