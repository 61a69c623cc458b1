"""What a replay covers: its options, the ranges of images.uploaded they select, and the
request sent per photo."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import schemas
from imaging.errors import ConfigurationError, SchemaViolation
from imaging.profile import Profile
from streams.identity import keys_meant_by
from streams.records import ReplayRequested, deterministic_id, job_id_for


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


@dataclass(frozen=True)
class UploadFilter:
    sellers: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()

    @classmethod
    def of(cls, sellers: Iterable[str], skus: Iterable[str]) -> UploadFilter:
        """The filter of an operator's --seller / --sku values: event keys as shown in
        events and rows, or catalogue ids as the seller has them ("Müller GmbH")."""
        return cls(frozenset().union(*map(keys_meant_by, sellers)),
                   frozenset().union(*map(keys_meant_by, skus)))

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
