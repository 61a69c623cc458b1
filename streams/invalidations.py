"""CloudFront invalidation batching, pure (no I/O): the CDN sink's decisions in one place.

CloudFront rules this module enforces (reference/aws-image-services.md):

* a path starts with ``/``, is at most 4,000 characters, ``*`` only as its last character,
  non-ASCII and RFC 1738 "unsafe" characters percent-encoded and nothing else (CloudFront
  compares the encoded form with viewer URLs);
* at most 3,000 individual paths and 15 wildcard paths *in progress* per distribution:
  a batch never holds more than ``min(max_paths, 3000)`` paths nor more than 15 wildcards,
  so one batch alone always fits; several in flight may not, and CloudFront then answers
  TooManyInvalidationsInProgress, which the sink backs off on (a retryable error);
* reusing a CallerReference with the same paths returns the existing invalidation.

**Caller reference.** ``sha256(sorted paths) + sha256(sorted source tokens)``, where a
source token identifies the *event content* that asked for the paths (the sink uses
event_id + occurred_at of each ImageCompleted). Why not a time window or a sequence
number: neither survives a redelivery (a restarted worker reads the same events at
another time, its counter starts again), and a counter that restarts is dangerous, not
just useless: a new batch with the same paths and a reused number would get the *old*
invalidation back and the new image would never be invalidated. Content tokens give the
two properties we need: a redelivered identical batch has the same reference (CloudFront
returns the existing invalidation, and this batcher's memory of confirmed references
skips the call), while a genuinely new result for the same paths (new occurred_at) gets a
new reference and a new invalidation.

**Acknowledgement order.** faust 0.15.3 commits the first run of consecutive acked
offsets, and its gap check is off by one (``min(acked) - committed > 1``) and skipped
while nothing was committed yet: acking offset 11 while 10 is still pending can commit
past 10. :class:`InOrderAcks` releases items per partition strictly in arrival order, so
an event finished early (no paths, dead-lettered) waits behind one still being batched.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from itertools import count
from typing import Generic, TypeVar

from imaging.errors import PermanentError

MAX_PATH_LENGTH = 4000
MAX_PATHS_IN_PROGRESS = 3000
MAX_WILDCARDS_IN_PROGRESS = 15
REMEMBERED_REFERENCES = 4096

# RFC 1738 section 2.2 "unsafe" characters ('%' is handled separately).
_UNSAFE = frozenset(' <>"#{}|\\^~[]`')
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

T = TypeVar("T")


def _percent(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _encode(text: str, *, literal: bool) -> str:
    """Percent-encode what CloudFront requires; ``literal`` text has no escapes,
    query strings or wildcards of its own (an S3 key)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            if not literal and _ESCAPE.match(text, i):
                out.append(text[i:i + 3].upper())  # already an escape: keep it
                i += 3
                continue
            out.append("%25")
        elif ord(ch) <= 0x20 or ord(ch) >= 0x7F or ch in _UNSAFE:
            out.append(_percent(ch))
        elif literal and ch in "*?":
            out.append(_percent(ch))  # a key's '*' is no wildcard, its '?' no query
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def normalize_path(path: str) -> str:
    """The CloudFront form of an invalidation path, or PermanentError saying why not.

    A missing leading '/' is added; '*' is a wildcard and allowed only last.
    """
    if not isinstance(path, str) or not path:
        raise PermanentError(f"invalidation path must be a non-empty string: {path!r}")
    if not path.startswith("/"):
        path = "/" + path
    if "*" in path[:-1]:
        raise PermanentError(f"invalidation path has '*' before its end: {path[:200]!r}")
    encoded = _encode(path, literal=False)
    if len(encoded) > MAX_PATH_LENGTH:
        raise PermanentError(
            f"invalidation path is {len(encoded)} characters encoded (max {MAX_PATH_LENGTH})"
        )
    return encoded


def path_for_key(key: str) -> str:
    """The CDN path of an object key (every character of a key is literal)."""
    if not isinstance(key, str) or not key.strip("/"):
        raise PermanentError(f"not an object key: {key!r}")
    return normalize_path("/" + _encode(key.lstrip("/"), literal=True))


def event_token(event_id: str, content: str) -> str:
    """Source token of one result: the same result emitted again (a redelivery, or a
    re-run after a crash) keeps it and is not invalidated twice; new content changes it."""
    return hashlib.sha256(f"{event_id}\x1f{content}".encode()).hexdigest()[:32]


def caller_reference(paths: Iterable[str], sources: Iterable[str]) -> str:
    """Deterministic CallerReference of a batch (see the module docstring)."""
    paths_hash = hashlib.sha256("\n".join(sorted(set(paths))).encode()).hexdigest()
    sources_hash = hashlib.sha256("\n".join(sorted(set(sources))).encode()).hexdigest()
    return f"imgstream-{paths_hash[:24]}-{sources_hash[:24]}"


@dataclass(frozen=True)
class InvalidationBatch:
    """One CreateInvalidation request: sorted unique paths and who asked for them."""

    paths: tuple[str, ...]
    sources: frozenset[str]
    caller_reference: str
    # path -> sources that asked for it (for settling the sources' bookkeeping)
    members: tuple[tuple[str, frozenset[str]], ...] = field(repr=False, compare=False)

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.paths if p.endswith("*"))


class InvalidationBatcher:
    """Collects paths, deduplicated, into batches by count and by time window.

    ``add`` returns the batches that became full; ``due`` the pending batch once
    ``window_seconds`` passed since its first path. Each source (an event) counts its
    paths still unconfirmed; ``settle`` says which sources are now fully done, so the
    caller can acknowledge their events even when their paths were split over batches.
    """

    def __init__(self, max_paths: int, window_seconds: float) -> None:
        if max_paths < 1 or window_seconds <= 0:
            raise ValueError("max_paths must be >= 1 and window_seconds > 0")
        self.max_paths = min(max_paths, MAX_PATHS_IN_PROGRESS)
        self.window_seconds = window_seconds
        self._pending: dict[str, set[str]] = {}
        self._first_at: float | None = None
        self._wildcards = 0
        self._outstanding: dict[str, int] = {}
        self._confirmed: OrderedDict[str, None] = OrderedDict()
        self._anonymous = count(1)
        self._nonce = f"{id(self):x}"

    @property
    def pending_paths(self) -> int:
        return len(self._pending)

    @property
    def outstanding_sources(self) -> int:
        return len(self._outstanding)

    def next_due(self) -> float | None:
        """When the pending batch becomes due (None: nothing pending)."""
        return None if self._first_at is None else self._first_at + self.window_seconds

    def add(self, paths: Iterable[str], now: float,
            source: str | None = None) -> list[InvalidationBatch]:
        """Queue ``paths`` (validated all-or-nothing); returns batches that became full.

        ``source`` identifies the content asking (see the module docstring); without one
        the add gets a token of its own, which is safe but not idempotent on redelivery.
        """
        normalized = list(dict.fromkeys(normalize_path(p) for p in paths))
        if source is None:
            source = f"anonymous-{self._nonce}-{next(self._anonymous)}"
        full: list[InvalidationBatch] = []
        for path in normalized:
            sources = self._pending.get(path)
            if sources is not None:
                if source not in sources:
                    sources.add(source)
                    self._outstanding[source] = self._outstanding.get(source, 0) + 1
                continue
            self._pending[path] = {source}
            self._outstanding[source] = self._outstanding.get(source, 0) + 1
            self._wildcards += path.endswith("*")
            if self._first_at is None:
                self._first_at = now
            if (len(self._pending) >= self.max_paths
                    or self._wildcards >= MAX_WILDCARDS_IN_PROGRESS):
                full.append(self._cut())
        return full

    def due(self, now: float) -> InvalidationBatch | None:
        """The pending batch if its window has elapsed, else None."""
        if self._first_at is None or now - self._first_at < self.window_seconds:
            return None
        return self._cut()

    def flush(self) -> InvalidationBatch | None:
        """The pending batch now, whatever its age (None: nothing pending)."""
        return self._cut() if self._pending else None

    def already_confirmed(self, batch: InvalidationBatch) -> bool:
        """True when this very batch (same reference) was confirmed before."""
        return batch.caller_reference in self._confirmed

    def settle(self, batch: InvalidationBatch, *, succeeded: bool) -> list[str]:
        """Record a batch's outcome; returns the sources with no path left unsettled."""
        if succeeded:
            self._confirmed[batch.caller_reference] = None
            self._confirmed.move_to_end(batch.caller_reference)
            while len(self._confirmed) > REMEMBERED_REFERENCES:
                self._confirmed.popitem(last=False)
        settled: list[str] = []
        for _path, sources in batch.members:
            for source in sorted(sources):
                left = self._outstanding.get(source, 0) - 1
                if left > 0:
                    self._outstanding[source] = left
                elif source in self._outstanding:
                    del self._outstanding[source]
                    settled.append(source)
        return settled

    def _cut(self) -> InvalidationBatch:
        members = tuple(sorted((p, frozenset(s)) for p, s in self._pending.items()))
        paths = tuple(p for p, _ in members)
        sources = frozenset().union(*(s for _, s in members))
        self._pending = {}
        self._first_at = None
        self._wildcards = 0
        return InvalidationBatch(paths, sources, caller_reference(paths, sources), members)


@dataclass
class _Entry(Generic[T]):
    item: T
    done: bool = False


class InOrderAcks(Generic[T]):
    """Releases items per lane (partition) in arrival order, once they and all before
    them are done (see the module docstring for why faust needs this)."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, deque[_Entry[T]]] = {}
        self._entries: dict[int, _Entry[T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def track(self, lane: Hashable, item: T) -> None:
        entry = _Entry(item)
        self._entries[id(item)] = entry
        self._lanes.setdefault(lane, deque()).append(entry)

    def done(self, item: T) -> None:
        entry = self._entries.get(id(item))
        if entry is not None:
            entry.done = True

    def release(self) -> list[T]:
        """Items now safe to acknowledge, in order within each lane."""
        ready: list[T] = []
        for lane, entries in list(self._lanes.items()):
            while entries and entries[0].done:
                entry = entries.popleft()
                del self._entries[id(entry.item)]
                ready.append(entry.item)
            if not entries:
                del self._lanes[lane]
        return ready
