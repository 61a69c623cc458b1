"""``imgstream replay`` itself: progress, pacing, resume, the final report."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from imaging.errors import ConfigurationError, PermanentError
from imaging.planning import AI_DISABLED, check_routing_models
from imaging.profile import Profile
from profiles import load_profile
from services.database import Database
from services.model_catalog import ModelCatalog, load_catalog
from services.object_store import ObjectStore, ObjectUri
from streams.replay.comparisons import (
    TIERS,
    ai_cost,
    current_tier,
    plan_signature,
    tier_matrix,
    tier_moves_summary,
)
from streams.replay.options import (
    PartitionRange,
    ReplayOptions,
    UploadFilter,
    decode_upload,
    job_id,
    parse_offsets,
    parse_time,
    plan_ranges,
    replay_request,
)
from streams.replay.projection import Projection, _init_projection, dry_run_report, project
from streams.replay.queries import (
    DONE_STATUSES,
    current_results,
    dead_lettered,
    done_jobs,
    job_states,
    tiers_under,
)
from streams.replay.upload_log import Chunk, RequestSender, UploadLog
from streams.settings import Settings
from streams.topics import TOPIC_SPECS

BATCH_SIZE = 500          # messages per chunk of a real run: one flush and commit each
DRY_RUN_BATCH_SIZE = 64   # smaller: every chunk waits for its assessments


def run_replay(settings: Settings, options: ReplayOptions, console: Console) -> int:
    """The ``imgstream replay`` command; returns its exit code."""
    try:
        profile = load_profile(options.profile, settings.profiles_dir)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc}. Profiles live in profiles/ or in "
                                 "IMGSTREAM_PROFILES_DIR (the workers need the same file)."
                                 ) from None
    catalog = load_catalog()
    check_routing_models(profile, catalog)
    if options.offsets and (options.from_time or options.to_time):
        raise ConfigurationError("--offsets cannot be combined with --from/--to")
    if options.rate is not None and options.rate <= 0:
        raise ConfigurationError("--rate must be positive")
    replay = _Replay(settings, options, profile, catalog,
                     Console(stderr=True) if options.as_json else console)
    summary = asyncio.run(replay.run())
    if options.as_json:
        print(json.dumps(summary, indent=2, default=str))
    if summary.get("interrupted"):
        return 130
    return 1 if summary.get("failed_jobs") or summary.get("wait_timed_out") else 0


class _Replay:
    def __init__(self, settings: Settings, options: ReplayOptions, profile: Profile,
                 catalog: ModelCatalog, console: Console) -> None:
        self.settings, self.options, self.profile, self.catalog = (settings, options,
                                                                  profile, catalog)
        self.console = console
        self.group = options.group or (f"{settings.app_id}-replay-{profile.name}-"
                                       f"{profile.version}")
        # A dry run reads under a throw-away group and commits nothing.
        self.read_group = (f"{self.group}-dry-run-{uuid.uuid4().hex[:8]}" if options.dry_run
                           else self.group)
        self.filter = UploadFilter.of(options.sellers, options.skus)
        # Parsed before anything connects: a typo is reported at once.
        self.explicit = parse_offsets(options.offsets)
        self.from_ms = parse_time(options.from_time) if options.from_time else None
        self.to_ms = parse_time(options.to_time) if options.to_time else None
        self.stats: Counter[str] = Counter()
        self.seen: set[str] = set()  # image ids met in this run (the topic may repeat one)
        self.stopping = asyncio.Event()

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop)
        started = time.monotonic()
        log = UploadLog(self.settings, self.read_group)
        try:
            ranges = self._ranges(log)
            head = self._head(ranges)
            if not self.options.as_json:
                self._print_head(head)
            db = await Database.connect(self.settings, create=False)
            try:
                if self.options.dry_run:
                    summary = await self._dry_run(log, ranges, db)
                else:
                    summary = await self._replay(log, ranges, db)
            finally:
                await db.close()
        finally:
            log.close()
        summary = {**head, **summary, "elapsed_s": round(time.monotonic() - started, 2)}
        if not self.options.as_json:
            self._print_summary(summary)
        return summary

    def _stop(self) -> None:
        """First Ctrl-C (or SIGTERM): finish the chunk at hand, commit it, stop. Second:
        stop at once (nothing is lost: the last commit is behind the work done)."""
        self.stopping.set()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        self.console.print("[yellow]stopping after the current chunk "
                           "(again to stop at once)[/]")

    def _ranges(self, log: UploadLog) -> list[PartitionRange]:
        partitions = log.partitions()
        watermarks = log.watermarks(partitions)
        explicit = self.explicit
        unknown = set(explicit) - set(partitions)
        if unknown:
            raise ConfigurationError(f"--offsets: {log.topic} has no partition "
                                     f"{sorted(unknown)[0]} (it has {len(partitions)})")
        first = {p: start for p, (start, _) in explicit.items()}
        last = {p: end for p, (_, end) in explicit.items() if end is not None}
        if self.from_ms is not None:
            first = log.offsets_at(self.from_ms, watermarks)
        if self.to_ms is not None:
            last = log.offsets_at(self.to_ms, watermarks)
        committed = {} if self.options.dry_run else log.committed(partitions)
        return plan_ranges(watermarks, first=first, last=last, committed=committed,
                           only=explicit or None)

    def _progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TaskProgressColumn(),
                        TextColumn("{task.fields[rate]:.1f} {task.fields[unit]}/s"),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=self.console, transient=False)

    def _head(self, ranges: Sequence[PartitionRange]) -> dict[str, Any]:
        return {
            "dry_run": self.options.dry_run,
            "profile": self.profile.ref,
            "group": self.read_group,
            "topic": self.settings.topic_name(TOPIC_SPECS["uploaded"].name),
            "ranges": {str(r.partition): [r.start, r.end] for r in ranges},
            "resumed": any(r.resumed for r in ranges),
        }

    def _uploads(self, chunk: Chunk) -> list[tuple[int, dict[str, Any] | None]]:
        """Per message (in order): its index and the upload to replay, or None."""
        out: list[tuple[int, dict[str, Any] | None]] = []
        for index, message in enumerate(chunk.messages):
            self.stats["scanned"] += 1
            uploaded = decode_upload(message.value())
            if uploaded is None:
                self.stats["invalid"] += 1
            elif self.filter.matches(uploaded):
                self.stats["matched"] += 1
                if uploaded["image_id"] in self.seen:
                    self.stats["duplicates"] += 1
                else:
                    self.seen.add(uploaded["image_id"])
                    out.append((index, uploaded))
                    continue
            out.append((index, None))
        return out

    # ------------------------------------------------------------ real run

    async def _replay(self, log: UploadLog, ranges: Sequence[PartitionRange],
                      db: Database) -> dict[str, Any]:
        sender = RequestSender(self.settings)
        requested: dict[str, tuple[str, str]] = {}  # image -> (job id, tier before)
        since = datetime.now(UTC).replace(tzinfo=None)
        total = sum(r.size for r in ranges)
        finished = True
        started = time.monotonic()
        pace = _Pacer(self.options.rate)
        batch = max(1, math.ceil(self.options.rate)) if self.options.rate else BATCH_SIZE
        with self._progress() as progress:
            task = progress.add_task(f"replay {self.profile.name} {self.profile.version}",
                                     total=total, rate=0.0, unit="msg")
            for chunk in log.read(ranges, batch):
                decided = self._uploads(chunk)
                uploads = [u for _, u in decided if u is not None]
                jobs = {u["image_id"]: job_id(u["image_id"], self.profile) for u in uploads}
                done = await done_jobs(db, list(jobs.values()))
                todo = [u["image_id"] for u in uploads if jobs[u["image_id"]] not in done]
                before = (await current_results(db, todo)) if self.options.wait else {}
                handled = len(chunk.messages)
                for index, uploaded in decided:
                    if uploaded is None:
                        continue
                    image_id = uploaded["image_id"]
                    if jobs[image_id] in done:
                        self.stats["skipped_unchanged"] += 1
                        continue
                    await pace.wait(self.stopping)
                    if self.stopping.is_set():
                        handled = index
                        break
                    sender.send(replay_request(uploaded, self.profile, self.group))
                    requested[image_id] = (jobs[image_id], current_tier(before.get(image_id)))
                    self.stats["requested"] += 1
                sender.confirm()
                positions = {m.partition(): m.offset() + 1 for m in chunk.messages[:handled]}
                if handled == len(chunk.messages):
                    positions.update(chunk.finished)
                log.commit(positions)
                progress.update(task, advance=handled, rate=self.stats["scanned"] / max(
                    time.monotonic() - started, 1e-6))
                if self.stopping.is_set():
                    finished = False
                    break
        if finished:
            log.close()
            log.forget_progress()
        summary = {"in_range": total,
                   **{k: self.stats[k] for k in ("scanned", "matched", "requested",
                                                 "skipped_unchanged", "duplicates",
                                                 "invalid")},
                   "interrupted": not finished}
        if self.options.wait and finished and requested:
            summary.update(await self._wait(db, requested, since))
            summary["interrupted"] = self.stopping.is_set()
        return summary

    async def _wait(self, db: Database, requested: Mapping[str, tuple[str, str]],
                    since: datetime) -> dict[str, Any]:
        images = list(requested)
        jobs = [job for job, _ in requested.values()]
        deadline = (None if self.options.wait_timeout is None
                    else time.monotonic() + self.options.wait_timeout)
        started = time.monotonic()
        with self._progress() as progress:
            task = progress.add_task("waiting for the jobs", total=len(jobs), rate=0.0,
                                     unit="job")
            while True:
                states = await job_states(db, jobs)
                failed = await dead_lettered(db, images, since)
                completed = {image for image, (job, _) in requested.items()
                             if states.get(job) in DONE_STATUSES}
                failed -= completed
                ended = len(completed) + len(failed)
                progress.update(task, completed=ended, rate=ended / max(
                    time.monotonic() - started, 1e-6))
                timed_out = deadline is not None and time.monotonic() > deadline
                if ended == len(jobs) or timed_out or self.stopping.is_set():
                    break
                await asyncio.sleep(1.0)
        tiers = await tiers_under(db, sorted(completed), self.profile)
        matrix = tier_matrix((requested[i][1], tiers[i]) for i in completed if i in tiers)
        return {"completed_jobs": len(completed), "failed_jobs": len(failed),
                "failed_images": sorted(failed), "wait_timed_out": ended < len(jobs),
                "wait_s": round(time.monotonic() - started, 2), "tier_moves": matrix,
                "tier_moves_summary": tier_moves_summary(matrix)}

    # ------------------------------------------------------------ dry run

    async def _dry_run(self, log: UploadLog, ranges: Sequence[PartitionRange],
                       db: Database) -> dict[str, Any]:
        ai_reason = None if self.settings.ai_enabled else AI_DISABLED
        projections: list[Projection] = []
        total = sum(r.size for r in ranges)
        started = time.monotonic()
        finished = True
        limit = asyncio.Semaphore(2 * (os.cpu_count() or 1))
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1,
                                 mp_context=multiprocessing.get_context("forkserver"),
                                 initializer=_init_projection,
                                 initargs=(self.profile, self.catalog, ai_reason)) as pool, \
                contextlib.closing(ObjectStore(self.settings)) as store, \
                self._progress() as progress:
            task = progress.add_task(f"dry run {self.profile.name} {self.profile.version}",
                                     total=total, rate=0.0, unit="photo")

            async def one(uploaded: dict[str, Any], current: dict[str, Any] | None,
                          requested: bool) -> Projection:
                base = Projection(
                    image_id=uploaded["image_id"], seller_id=uploaded["seller_id"],
                    sku_id=uploaded["sku_id"], current_tier=current_tier(current),
                    current_profile=(f"{current['current_profile_name']} "
                                     f"{current['current_profile_version']}"
                                     if current and current["current_profile_name"] else None),
                    current_plan=current["plan"] if current else None,
                    would_request=requested)
                async with limit:
                    try:
                        data = await store.get(ObjectUri.parse(uploaded["original_uri"]))
                        if hashlib.sha256(data).hexdigest() != uploaded["content_sha256"]:
                            raise PermanentError("the stored original does not match the "
                                                 "event's sha256")
                        result = await asyncio.get_running_loop().run_in_executor(
                            pool, project, data)
                    except Exception as exc:  # reported per photo; the dry run goes on
                        return replace(base, error=f"{type(exc).__name__}: {exc}")
                return replace(base, new_tier=result["tier"],
                                new_score=result["overall_score"],
                                new_plan=plan_signature(result["steps"]),
                                ai_usd=ai_cost(result["steps"]))

            for chunk in log.read(ranges, DRY_RUN_BATCH_SIZE):
                uploads = [u for _, u in self._uploads(chunk) if u is not None]
                ids = [u["image_id"] for u in uploads]
                done = await done_jobs(db, [job_id(i, self.profile) for i in ids])
                current = await current_results(db, ids)
                projections += await asyncio.gather(*(
                    one(u, current.get(u["image_id"]),
                        job_id(u["image_id"], self.profile) not in done) for u in uploads))
                progress.update(task, advance=len(chunk.messages),
                                rate=self.stats["scanned"] / max(time.monotonic() - started,
                                                                 1e-6))
                if self.stopping.is_set():
                    finished = False
                    break
        budget = await asyncio.to_thread(_remaining_budget, self._api())
        report = dry_run_report(projections, budget)
        summary = {"in_range": total,
                   **{k: self.stats[k] for k in ("scanned", "matched", "duplicates",
                                                 "invalid")},
                   "would_request": sum(1 for p in projections if p.would_request),
                   "skipped_unchanged": sum(1 for p in projections if not p.would_request),
                   "interrupted": not finished, **report}
        if self.options.per_image:
            summary["images"] = [p.as_dict() for p in projections]
        return summary

    def _api(self) -> str:
        return (self.options.api
                or f"http://{self.settings.web_host}:{self.settings.web_port}").rstrip("/")

    # ------------------------------------------------------------ output

    def _print_head(self, head: Mapping[str, Any]) -> None:
        ranges = ", ".join(f"{p}:{a}-{b}" for p, (a, b) in head["ranges"].items())
        self.console.print(
            f"{'dry run: ' if head['dry_run'] else ''}profile [bold]{self.profile.name} "
            f"{self.profile.version}[/], group {head['group']}"
            f"{' (resuming)' if head['resumed'] else ''}; {head['topic']} offsets {ranges}")

    def _print_summary(self, s: Mapping[str, Any]) -> None:
        print_ = self.console.print
        counts = [("in range", s["in_range"]), ("scanned", s["scanned"]),
                  ("matched", s["matched"])]
        if s["dry_run"]:
            counts += [("would request", s["would_request"]),
                       ("skipped (unchanged)", s["skipped_unchanged"])]
        else:
            counts += [("requested", s["requested"]),
                       ("skipped (unchanged)", s["skipped_unchanged"])]
        counts += [("duplicates", s["duplicates"]), ("invalid", s["invalid"])]
        print_("  ".join(f"{name} [bold]{n}[/]" for name, n in counts)
               + f"  in {s['elapsed_s']:.1f}s")
        if s["interrupted"]:
            print_("[yellow]interrupted[/]: "
                   + ("nothing was written" if s["dry_run"]
                      else "run the same command again to resume"))
        if "tier_moves" in s:
            print_(_matrix_table(s["tier_moves"], s["tier_moves_summary"]))
        if s["dry_run"]:
            self._print_dry_run(s)
        elif "completed_jobs" in s:
            colour = "red" if s["failed_jobs"] or s["wait_timed_out"] else "green"
            print_(f"[{colour}]jobs completed {s['completed_jobs']}, failed "
                   f"{s['failed_jobs']}[/]{', wait timed out' if s['wait_timed_out'] else ''}"
                   f" (waited {s['wait_s']:.1f}s)")
            for image in s["failed_images"][:10]:
                print_(f"  failed: {image} (see the dead_letters table)")

    def _print_dry_run(self, s: Mapping[str, Any]) -> None:
        print_ = self.console.print
        plans = s["plans"]
        print_(f"plans: [bold]{plans['changed']}[/] change, {plans['same']} stay the same, "
               f"{plans['new']} new (never processed)")
        for example in plans["examples"]:
            print_(f"  {example['seller_id']}/{example['sku_id']} {example['image_id']}\n"
                   f"    now: {example['current']}\n    new: {example['new']}")
        budget = s["budget"]
        if isinstance(budget, dict):
            verdict = ("[green]fits[/]" if s["fits_budget"] else
                       "[red]exceeds it: the rest would run local fallbacks[/]")
            against = (f"today's remaining budget ${budget['remaining_usd']:.2f} "
                       f"(cap ${budget['cap_usd']:.2f}, {budget.get('day')}): {verdict}")
        else:
            against = "today's remaining budget unknown (the API did not answer)"
        print_(f"projected AI spend [bold]${s['projected_ai_usd']:.2f}[/] for "
               f"{s['projected_ai_images']} photos (an upper bound: cached results are "
               f"free), against {against}")
        for failure in s["failed"][:10]:
            print_(f"  [red]not assessed[/] {failure['image_id']}: {failure['error']}")


def _matrix_table(matrix: Mapping[str, Mapping[str, int]],
                  summary: Mapping[str, int]) -> Table:
    table = Table(title="tier moves (rows: now, columns: new)",
                  caption=(f"{summary['down']} down, {summary['up']} up, {summary['same']} "
                           f"same, {summary['first']} first assessed"))
    table.add_column("now \\ new")
    for tier in TIERS:
        table.add_column(tier, justify="right")
    for old, row in matrix.items():
        if not any(row.values()):
            continue
        table.add_row(old, *(f"[dim]{row[t]}[/]" if old == t else
                             f"[bold]{row[t]}[/]" if row[t] else "0" for t in TIERS))
    return table


class _Pacer:
    """At most ``rate`` requests per second (None: no limit); stops waiting on ``stop``."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    async def wait(self, stop: asyncio.Event) -> None:
        delay = self.next_at - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        self.next_at = max(self.next_at, time.monotonic() - self.interval) + self.interval


def _remaining_budget(api: str) -> dict[str, Any] | None:
    """Today's cap and remaining AI budget from a worker, None when it cannot say."""
    try:
        from streams.auth import admin_headers
        from streams.settings import get_settings

        request = urllib.request.Request(f"{api}/api/stats/costs",
                                         headers=admin_headers(get_settings()))
        with urllib.request.urlopen(request, timeout=5) as response:
            costs = json.loads(response.read())
        return {k: costs[k] for k in ("day", "cap_usd", "remaining_usd", "settled_usd",
                                      "reserved_usd")}
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None
