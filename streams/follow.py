"""``imgstream upload --wait``: follow photos through the pipeline until each one is
completed, skipped or failed, with a progress bar, by polling GET /api/images/{id}."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.api_client import ApiClient, ApiError, ApiUnreachable

TERMINAL = frozenset({"completed", "skipped", "failed"})


def follow(client: ApiClient, image_ids: list[str], console: Console, timeout: float,
           interval: float = 1.0) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Poll until every photo is in a terminal state or ``timeout`` seconds passed.
    Returns (the last document of each photo, the ids still unfinished)."""
    pending = list(dict.fromkeys(image_ids))
    last: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    columns = (TextColumn("processing"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[states]}"), TimeElapsedColumn())

    def fetch(image_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            return image_id, client.get(f"/api/images/{image_id}")
        except (ApiUnreachable, ApiError) as exc:
            # A worker restarting or a 5xx is waited out; a refusal is not.
            if isinstance(exc, ApiError) and exc.status < 500 and exc.status != 404:
                raise
            return image_id, None

    total = len(pending)
    with Progress(*columns, console=console, transient=False) as progress, \
            ThreadPoolExecutor(max_workers=8) as pool:
        task = progress.add_task("follow", total=total, states="")
        while pending:
            for image_id, doc in pool.map(fetch, pending):
                if doc is not None:
                    last[image_id] = doc
            pending = [i for i in pending if (last.get(i) or {}).get("status") not in TERMINAL]
            progress.update(task, completed=total - len(pending), states=_states(last))
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    return last, pending


def _states(documents: dict[str, dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for doc in documents.values():
        counts[doc.get("status") or "?"] = counts.get(doc.get("status") or "?", 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
