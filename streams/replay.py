"""``imgstream replay``: reprocess the catalog (images.uploaded) under another profile.

A plain confluent-kafka client rather than an agent, because a replay is a bounded job
that an operator starts, watches, interrupts and resumes. It reads a fixed range of
images.uploaded under a consumer group of its own (live consumers never notice) and its
only effect is one ``ReplayRequested`` per photo on images.replay: the workers'
``assess_replay`` agent handles those apart from live uploads, everything downstream
carries the replay's profile, and the sinks keep each version's rows.

* A photo whose job for this profile version already completed is skipped: replaying an
  unchanged profile over unchanged photos does no work and pays nothing.
* Offsets are committed once the broker confirmed the requests, so an interrupted replay
  resumes where it stopped (a request sent twice is harmless: its ids are deterministic).
  A replay that reaches the end of its range deletes its group's offsets, so the next run
  scans its range again (skipping what is done) instead of finding nothing to resume.
* ``--dry-run`` assesses and routes in-process with the workers' pure functions, writes
  nothing, and compares with the current results: tier moves, plan changes and projected
  AI spend against the day's remaining budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
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

import schemas
from imaging.assessment import assess_quality
from imaging.planning import AI_DISABLED, check_routing_models, plan_enhancement
from imaging.profile import Profile
from profiles import load_profile
from services.database import Database
from services.model_catalog import ModelCatalog, load_catalog
from services.object_store import ObjectStore, ObjectUri
from streams.errors import ConfigurationError, PermanentError, SchemaViolation, ServiceUnavailable
from streams.records import ReplayRequested, deterministic_id, job_id_for
from streams.settings import Settings
from streams.topics import TOPIC_SPECS

TIERS = ("excellent", "good", "poor")
NEVER_ASSESSED = "none"
DONE_STATUSES = ("completed", "skipped")
BATCH_SIZE = 500          # messages per chunk of a real run: one flush and commit each
DRY_RUN_BATCH_SIZE = 64   # smaller: every chunk waits for its assessments
STALL_SECONDS = 30.0      # no message from a partition still owed for this long: give up
IN_CHUNK = 500            # ids per SQL IN (...) list

Signature = tuple[tuple[str, str], ...]


# ---------------------------------------------------------------- options and ranges

@dataclass(frozen=True)
class ReplayOptions:
    profile: str
    from_time: str | None = None
    to_time: str | None = None
    offsets: tuple[str, ...] = ()
    sellers: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    group: str | None = None
    dry_run: bool = False
    as_json: bool = False
    per_image: bool = False
    api: str | None = None
    wait: bool = False
    wait_timeout: float | None = None
    rate: float | None = None


def parse_time(text: str) -> int:
    """An ISO-8601 date or time (no zone = UTC) as epoch milliseconds, Kafka's timestamps."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"not an ISO-8601 time: {text!r} "
                                 "(e.g. 2026-11-22 or 2026-11-22T10:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


_OFFSETS = re.compile(r"^(\d+):(\d+)-(\d*)$")


def parse_offsets(specs: Sequence[str]) -> dict[int, tuple[int, int | None]]:
    """``P:START-END`` (END exclusive; empty = the high watermark) per partition."""
    ranges: dict[int, tuple[int, int | None]] = {}
    for spec in specs:
        match = _OFFSETS.match(spec.strip())
        if not match:
            raise ConfigurationError(f"--offsets {spec!r}: expected PARTITION:START-END, "
                                     "e.g. 0:100-200 (END exclusive) or 0:100- (to the end)")
        partition, start = int(match[1]), int(match[2])
        end = int(match[3]) if match[3] else None
        if end is not None and end < start:
            raise ConfigurationError(f"--offsets {spec!r}: END is before START")
        if partition in ranges:
            raise ConfigurationError(f"--offsets: partition {partition} given twice")
        ranges[partition] = (start, end)
    return ranges


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int      # first offset to read
    end: int        # first offset not to read
    resumed: bool = False

    @property
    def size(self) -> int:
        return self.end - self.start


def plan_ranges(watermarks: Mapping[int, tuple[int, int]], *, first: Mapping[int, int],
                last: Mapping[int, int], committed: Mapping[int, int],
                only: Iterable[int] | None = None) -> list[PartitionRange]:
    """Each partition's range: from ``first`` (else the low watermark) to ``last`` (else the
    high watermark), both clamped to what the partition holds; a committed offset of the
    group further on means an interrupted run: resume there."""
    wanted = None if only is None else set(only)
    ranges = []
    for partition, (low, high) in sorted(watermarks.items()):
        if wanted is not None and partition not in wanted:
            continue
        start = min(max(first.get(partition, low), low), high)
        end = min(max(last.get(partition, high), start), high)
        resume = committed.get(partition)
        if resume is not None and resume > start:
            ranges.append(PartitionRange(partition, min(resume, end), end, resumed=True))
        else:
            ranges.append(PartitionRange(partition, start, end))
    return ranges


def first_offset_at(timestamp_ms: int, low: int, high: int,
                    timestamp_at: Callable[[int], int]) -> int:
    """The first offset in [low, high) whose message is not older than ``timestamp_ms``
    (``high`` when none): a binary search, as message timestamps grow along a partition.

    Not ListOffsets by timestamp (offsets_for_times): the embedded broker answers it with
    offset 0 whatever the time.
    """
    while low < high:
        middle = (low + high) // 2
        if timestamp_at(middle) < timestamp_ms:
            low = middle + 1
        else:
            high = middle
    return low


# ---------------------------------------------------------------- pure comparisons

@dataclass(frozen=True)
class UploadFilter:
    sellers: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()

    def matches(self, uploaded: Mapping[str, Any]) -> bool:
        return ((not self.sellers or uploaded["seller_id"] in self.sellers)
                and (not self.skus or uploaded["sku_id"] in self.skus))


def decode_upload(value: bytes | None) -> dict[str, Any] | None:
    """The ImageUploaded document of a message, or None when it is not a valid one."""
    try:
        document = json.loads(value or b"")
        schemas.validate_event("image_uploaded", document)
    except (ValueError, SchemaViolation):
        return None
    return document


def job_id(image_id: str, profile: Profile) -> str:
    """The job a replay produces: the same id route gives it."""
    return job_id_for(image_id, profile.name, profile.version)


def replay_request(uploaded: dict[str, Any], profile: Profile, replay_id: str
                   ) -> ReplayRequested:
    image_id = uploaded["image_id"]
    event = ReplayRequested.new(
        event_id=deterministic_id("ReplayRequested", image_id, profile.name, profile.version),
        replay_id=replay_id,
        image_id=image_id,
        profile=profile.ref,
        uploaded=uploaded,
    )
    schemas.validate_event(ReplayRequested.schema_name, event.to_document())
    return event


def current_tier(row: Mapping[str, Any] | None) -> str:
    """The tier of the image's current result, else of its latest assessment, else none."""
    if row is None:
        return NEVER_ASSESSED
    return row.get("current_tier") or row.get("latest_tier") or NEVER_ASSESSED


def tier_matrix(moves: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Counts of (current tier -> new tier); rows include ``none`` (never assessed)."""
    matrix = {old: dict.fromkeys(TIERS, 0) for old in (*TIERS, NEVER_ASSESSED)}
    for old, new in moves:
        matrix[old][new] += 1
    return matrix


def tier_moves_summary(matrix: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """How many images go up, down, keep their tier, or get a first one."""
    rank = {tier: i for i, tier in enumerate(TIERS)}  # 0 = best
    counts = Counter()
    for old, row in matrix.items():
        for new, n in row.items():
            if old == NEVER_ASSESSED:
                counts["first"] += n
            else:
                counts["same" if old == new else "up" if rank[new] < rank[old]
                       else "down"] += n
    return {k: counts[k] for k in ("same", "up", "down", "first")}


def plan_signature(steps: Iterable[Mapping[str, Any]]) -> Signature:
    """What a plan does, for comparison: its (operation, method) pairs in order."""
    ordered = sorted(steps, key=lambda s: s["order"])
    return tuple((s["operation"], s["method"]) for s in ordered)


def plan_change(current: Signature | None, new: Signature) -> str:
    if current is None:
        return "new"
    return "same" if current == new else "changed"


def describe_plan(signature: Signature | None) -> str:
    if signature is None:
        return "(none)"
    return " > ".join(f"{op}[{method}]" for op, method in signature) or "skip"


def ai_cost(steps: Iterable[Mapping[str, Any]]) -> float:
    return round(sum(s["estimated_cost_usd"] for s in steps if s["method"] == "ai"), 6)


# ---------------------------------------------------------------- in-process projection

_projection: tuple[Profile, ModelCatalog, str | None] | None = None


def _init_projection(profile: Profile, catalog: ModelCatalog, ai_reason: str | None) -> None:
    global _projection
    _projection = (profile, catalog, ai_reason)


def project(data: bytes) -> dict[str, Any]:
    """Assess and route one photo as the assess and route agents would (pool worker)."""
    assert _projection is not None, "_init_projection was not run"
    profile, catalog, ai_reason = _projection
    report = assess_quality(data, profile)
    plan = plan_enhancement(report.event_metrics(), report.judgement.tier,
                            report.subject.get("box"), profile, catalog, ai_reason)
    steps = [s.as_dict() for s in plan.steps]
    return {"tier": report.judgement.tier, "overall_score": report.judgement.overall_score,
            "steps": steps}


@dataclass(frozen=True)
class Projection:
    """One photo in a dry run: its current result and what the replay would make of it."""

    image_id: str
    seller_id: str
    sku_id: str
    current_tier: str
    current_profile: str | None
    current_plan: Signature | None
    would_request: bool
    new_tier: str | None = None
    new_score: float | None = None
    new_plan: Signature = ()
    ai_usd: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["current_plan"] = describe_plan(self.current_plan)
        document["new_plan"] = None if self.error else describe_plan(self.new_plan)
        return document


def dry_run_report(projections: Sequence[Projection], budget: Mapping[str, Any] | None,
                   examples: int = 5) -> dict[str, Any]:
    """Tier moves, plan changes and projected spend of a dry run (JSON-ready)."""
    assessed = [p for p in projections if p.error is None]
    matrix = tier_matrix((p.current_tier, p.new_tier) for p in assessed if p.new_tier)
    changes = Counter(plan_change(p.current_plan, p.new_plan) for p in assessed)
    changed = [p for p in assessed if plan_change(p.current_plan, p.new_plan) == "changed"]
    paying = [p for p in assessed if p.would_request and p.ai_usd > 0]
    projected = round(sum(p.ai_usd for p in paying), 6)
    remaining = None if budget is None else budget.get("remaining_usd")
    return {
        "tier_moves": matrix,
        "tier_moves_summary": tier_moves_summary(matrix),
        "plans": {
            "same": changes["same"], "changed": changes["changed"], "new": changes["new"],
            "examples": [{"image_id": p.image_id, "seller_id": p.seller_id, "sku_id": p.sku_id,
                          "current": describe_plan(p.current_plan),
                          "new": describe_plan(p.new_plan)} for p in changed[:examples]],
        },
        "projected_ai_usd": projected,
        "projected_ai_images": len(paying),
        "budget": dict(budget) if budget is not None else "unknown",
        "fits_budget": None if remaining is None else projected <= remaining,
        "failed": [{"image_id": p.image_id, "error": p.error}
                   for p in projections if p.error is not None],
    }


# ---------------------------------------------------------------- Kafka

@dataclass
class Chunk:
    """Messages read together, and the offsets to commit once they are handled."""

    messages: list[Message]
    finished: dict[int, int] = field(default_factory=dict)  # partition -> its range's end


class UploadLog:
    """images.uploaded through a confluent consumer that commits to the replay's group.

    Partitions are assigned, not subscribed: no group join (seconds on the embedded
    broker), and committed offsets still belong to the group.
    """

    def __init__(self, settings: Settings, group: str) -> None:
        self.topic = settings.topic_name(TOPIC_SPECS["uploaded"].name)
        self.bootstrap = settings.kafka_bootstrap
        self.group = group
        self._consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "session.timeout.ms": 6000,
            "logger": _quiet_logger,
        })
        self._closed = False

    def partitions(self) -> list[int]:
        try:
            metadata = self._consumer.list_topics(timeout=5)
        except KafkaException as exc:
            raise ServiceUnavailable(f"broker {self.bootstrap} unreachable: "
                                     f"{_kafka_reason(exc)}") from None
        topic = metadata.topics.get(self.topic)
        if topic is None or not topic.partitions:
            raise PermanentError(f"topic {self.topic} does not exist on {self.bootstrap}: "
                                 "no worker has started there yet, nothing to replay")
        return sorted(topic.partitions)

    def watermarks(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        return {p: self._call(self._consumer.get_watermark_offsets,
                              TopicPartition(self.topic, p), timeout=10)
                for p in partitions}

    def committed(self, partitions: Iterable[int]) -> dict[int, int]:
        answer = self._call(self._consumer.committed,
                            [TopicPartition(self.topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}

    def offsets_at(self, timestamp_ms: int, watermarks: Mapping[int, tuple[int, int]]
                   ) -> dict[int, int]:
        return {p: first_offset_at(timestamp_ms, low, high,
                                   lambda offset, p=p: self._timestamp_at(p, offset))
                for p, (low, high) in watermarks.items()}

    def _timestamp_at(self, partition: int, offset: int) -> int:
        self._consumer.assign([TopicPartition(self.topic, partition, offset)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self._consumer.consume(1, timeout=1.0):
                if message.error() is None:
                    return message.timestamp()[1]
        raise ServiceUnavailable(f"{self.topic}[{partition}] offset {offset} not readable")

    def read(self, ranges: Sequence[PartitionRange], batch_size: int) -> Iterator[Chunk]:
        """Chunks of the ranges' messages until every range is read (then no more)."""
        owed = {r.partition: r.end for r in ranges if r.size > 0}
        self._consumer.assign([TopicPartition(self.topic, r.partition, r.start)
                               for r in ranges if r.size > 0])
        heard_at = time.monotonic()
        while owed:
            chunk = Chunk([])
            for message in self._call(self._consumer.consume, num_messages=batch_size,
                                      timeout=1.0):
                partition = message.partition()
                end = owed.get(partition)
                if end is None:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ServiceUnavailable(f"reading {self.topic}: {error.str()}")
                if error is None and message.offset() < end:
                    chunk.messages.append(message)
                    if message.offset() + 1 < end:
                        continue
                # The end of the range, or of the partition (EOF): nothing more is owed.
                chunk.finished[partition] = end
                del owed[partition]
                self._consumer.pause([TopicPartition(self.topic, partition)])
            if chunk.messages or chunk.finished:
                heard_at = time.monotonic()
                yield chunk
            elif time.monotonic() - heard_at > STALL_SECONDS:
                raise ServiceUnavailable(f"no message from {self.topic} partitions "
                                         f"{sorted(owed)} for {STALL_SECONDS:.0f}s")

    def commit(self, positions: Mapping[int, int]) -> None:
        if positions:
            self._call(self._consumer.commit, offsets=[
                TopicPartition(self.topic, p, o) for p, o in positions.items()],
                asynchronous=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def forget_progress(self) -> None:
        """Delete the group's committed offsets (the range is done; nothing to resume)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet_logger})
        for future in admin.delete_consumer_groups([self.group], request_timeout=10).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                    raise ServiceUnavailable(f"deleting the offsets of group {self.group}: "
                                             f"{_kafka_reason(exc)}") from None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KafkaException as exc:
            raise ServiceUnavailable(f"{self.topic} on {self.bootstrap}: "
                                     f"{_kafka_reason(exc)}") from None


class RequestSender:
    """Produces ReplayRequested to images.replay; ``confirm`` waits for the broker's acks."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_name(TOPIC_SPECS["replay"].name)
        config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap,
                                  "logger": _quiet_logger}
        if settings.producer_max_batch_size <= 1:
            # One record per batch, like the workers: tansu misreports the high
            # watermark after multi-record batches (reference/kafka-and-faust.md).
            config["batch.num.messages"] = 1
        self._producer = Producer(config)
        self._failures: list[str] = []

    def send(self, event: ReplayRequested) -> None:
        while True:
            try:
                self._producer.produce(self.topic, key=event.image_id.encode(),
                                       value=event.to_json(), on_delivery=self._delivered)
                return
            except BufferError:  # local queue full: let deliveries drain it
                self._producer.poll(0.5)

    def confirm(self, timeout: float = 60.0) -> None:
        unconfirmed = self._producer.flush(timeout)
        if unconfirmed:
            raise ServiceUnavailable(f"broker did not confirm {unconfirmed} replay requests "
                                     f"on {self.topic} within {timeout:.0f}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise ServiceUnavailable(f"{len(failures)} replay requests not delivered to "
                                     f"{self.topic}: {failures[0]}")

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error.str())


def _kafka_reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


class _QuietLogger:
    """librdkafka logs connection retries on stderr; the CLI reports failures itself."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    def isEnabledFor(self, level: int) -> bool:
        return False


_quiet_logger = _QuietLogger()


# ---------------------------------------------------------------- MySQL

def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i:i + IN_CHUNK]


def _marks(items: Sequence[str]) -> str:
    return ", ".join(["%s"] * len(items))


async def done_jobs(db: Database, job_ids: Sequence[str]) -> set[str]:
    done: set[str] = set()
    for part in _chunks(job_ids):
        rows = await db.fetchall(
            f"SELECT job_id FROM enhancement_jobs WHERE job_id IN ({_marks(part)})"
            f" AND status IN ({_marks(DONE_STATUSES)})", (*part, *DONE_STATUSES))
        done.update(r["job_id"] for r in rows)
    return done


async def current_results(db: Database, image_ids: Sequence[str]
                          ) -> dict[str, dict[str, Any]]:
    """Per image: current profile and job, its tier (current_tier / latest_tier), plan."""
    results: dict[str, dict[str, Any]] = {}
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT p.image_id, p.current_job_id, p.current_profile_name,"
            " p.current_profile_version,"
            " (SELECT q.quality_tier FROM quality_metrics q WHERE q.image_id = p.image_id"
            "   AND q.metric_type = 'before' AND q.profile_name = p.current_profile_name"
            "   AND q.profile_version = p.current_profile_version) AS current_tier,"
            " (SELECT q.quality_tier FROM quality_metrics q WHERE q.image_id = p.image_id"
            "   AND q.metric_type = 'before' ORDER BY q.created_at DESC, q.id DESC LIMIT 1)"
            "   AS latest_tier"
            f" FROM product_images p WHERE p.image_id IN ({_marks(part)})", tuple(part))
        results.update({r["image_id"]: r for r in rows})
    jobs = [r["current_job_id"] for r in results.values() if r["current_job_id"]]
    steps: dict[str, list[dict[str, Any]]] = {j: [] for j in jobs}
    for part in _chunks(jobs):
        for row in await db.fetchall(
                "SELECT job_id, step_order, step_name, method FROM processing_steps"
                f" WHERE job_id IN ({_marks(part)})", tuple(part)):
            steps[row["job_id"]].append({"order": row["step_order"],
                                         "operation": row["step_name"],
                                         "method": row["method"]})
    for row in results.values():
        job = row["current_job_id"]
        row["plan"] = plan_signature(steps[job]) if job else None
    return results


async def job_states(db: Database, job_ids: Sequence[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for part in _chunks(job_ids):
        rows = await db.fetchall("SELECT job_id, status FROM enhancement_jobs"
                                 f" WHERE job_id IN ({_marks(part)})", tuple(part))
        states.update({r["job_id"]: r["status"] for r in rows})
    return states


async def dead_lettered(db: Database, image_ids: Sequence[str], since: datetime) -> set[str]:
    failed: set[str] = set()
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT DISTINCT image_id FROM dead_letters WHERE failed_at >= %s"
            f" AND image_id IN ({_marks(part)})", (since, *part))
        failed.update(r["image_id"] for r in rows)
    return failed


async def tiers_under(db: Database, image_ids: Sequence[str], profile: Profile
                      ) -> dict[str, str]:
    tiers: dict[str, str] = {}
    for part in _chunks(image_ids):
        rows = await db.fetchall(
            "SELECT image_id, quality_tier FROM quality_metrics WHERE metric_type = 'before'"
            " AND profile_name = %s AND profile_version = %s"
            f" AND image_id IN ({_marks(part)})", (profile.name, profile.version, *part))
        tiers.update({r["image_id"]: r["quality_tier"] for r in rows})
    return tiers


# ---------------------------------------------------------------- the command

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
        self.filter = UploadFilter(frozenset(options.sellers), frozenset(options.skus))
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
        store = ObjectStore(self.settings)
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
        with urllib.request.urlopen(f"{api}/api/stats/costs", timeout=5) as response:
            costs = json.loads(response.read())
        return {k: costs[k] for k in ("day", "cap_usd", "remaining_usd", "settled_usd",
                                      "reserved_usd")}
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None
