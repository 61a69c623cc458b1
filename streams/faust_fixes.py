"""Fixes for faust-streaming 0.15.3 committing offsets of events never processed.

Each one loses events for good when a worker dies or a partition moves
(docs/decisions/0002-faust-patches.md has how they were found and what they cost):

1. **Out-of-order acks.** Agents with ``concurrency > 1`` (assess, enhance_local,
   enhance_ai, finalize) finish the events of one partition out of order. faust commits
   the first run of consecutive acked offsets and checks the head of that run with an
   off-by-one (``min(acked) - committed > 1``), and not at all while the group has no
   committed offset: with 40 and 41 in flight and 41 acked first it commits 42.
2. **Skipped events acked.** During a rebalance a stream skips the events it takes from
   its buffer (flow control suspended, or fetched in an older consumer generation) and
   *acks* them "so the lag does not grow". The revocation then commits those offsets
   although nothing processed them, and the partition's next owner starts after them.
3. **No seek back for a partition never committed.** After a rebalance faust seeks every
   stream partition to its committed offset so that skipped events are fetched again;
   aiokafka's ``seek_to_committed`` seeks only where an offset > 0 is committed. A partition
   with no commit yet (a young topic: ``images.ai`` in the first minutes) keeps its fetch
   position past the skipped events, which then nobody processes: the kill tests saw
   partitions holding events, committed offset -1001, and an idle owner.
4. **Buffered events dropped without a release.** A topic read by two agents
   (``images.completed``: mysql_sink and cdn_sink) delivers each message with a refcount
   of 2. On revocation faust clears every agent's buffer; a message one agent already
   took and the other still had buffered keeps a reference forever, and the revocation's
   ``wait_empty`` waits for it forever: the worker never rejoins and the whole group
   stalls (seen in the two-worker kill test: "wait_empty: Waiting for tasks" for minutes).
   And when one agent processed a message that the other skipped, the last ack counted
   it as done: the skipping agent's work (a MySQL row, an invalidation) was lost.
5. **Offsets "missing" from the log counted as processed.** When a fetched offset is more
   than one past the last one delivered, faust assumes the log has a hole (compaction,
   transaction markers) and counts the offsets between as acked. Our topics have no
   holes: the jump means faust itself dropped fetched events (a batch cut short by a
   rebalance), and counting them lost uploads for good (seen: four photos stuck in
   ``uploaded``, their partition committed past them).
6. **Dropped events nobody notices.** The same rebalance races can drop fetched events
   with no jump to reveal them: the first events after a seek (the jump check needs a
   read offset > 0) or the tail of a partition (nothing later arrives). Nothing fetches
   them again: seen as a commit stuck below events processed after it, and as photos
   stuck in ``analyzed`` with their events one offset past the committed one.

The fixed rules: an ack counts towards a commit only for an event every stream really
processed (``tracked``, and no stream skipped or dropped it) in the current consumer
generation; an event acked while flow is suspended or after its generation ended is
simply fetched again after the rebalance's seek to the committed offset (at-least-once:
effects are idempotent). Events cleared from the buffers are released the same way. The
revocation waits at most ``rebalance_wait_seconds`` for events in flight (a sink
retrying a database that is down must not stall the group); what is still in flight then
is not committed and goes to the next owner. A stream
partition with no committed offset is sought to its first offset (we reset to
``earliest``), and that offset counts as committed, so the first commit must start
there. The commit is the end of the run of acked offsets that starts at the committed
offset, and never passes an event still in flight. Lost events are fetched again: an
offset jump rewinds the partition to the first offset not delivered (once: a hole met
again is a real one, and faust's gap handling applies); so does a committed offset that
later processed events have left behind (``lost_offset``), and a partition whose
remaining events are neither queued nor in flight for ``STALL_SECONDS``
(``stalled_partitions``). A rewind costs repeated work, never a lost event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

log = logging.getLogger(__name__)

Partition = TypeVar("Partition")

# Messages that some stream skipped or dropped (rule 4): never counted as processed.
_not_processed: weakref.WeakSet[Any] = weakref.WeakSet()


def next_commit_offset(acked: Sequence[int], expected: int | None,
                       in_flight: Iterable[int] = ()) -> int | None:
    """The offset to commit for sorted ``acked`` offsets, or None if there is none yet.

    ``expected`` is the committed offset (the next one to read), None when unknown;
    ``in_flight`` are offsets taken by a stream and not acked yet.
    """
    if expected is not None:  # offsets below it are committed already
        acked = [o for o in acked if o >= expected]
    if not acked or (expected is not None and acked[0] != expected):
        return None
    end = acked[0]
    for offset in acked[1:]:
        if offset != end + 1:
            break
        end = offset
    offset = min([end + 1, *in_flight])
    return offset if offset > acked[0] else None


def lost_offset(acked: Sequence[int], expected: int | None,
                in_flight: Iterable[int] = ()) -> int | None:
    """The committed offset when its event is gone: later events of the partition were
    processed (``acked``, sorted) while it is neither acked nor in flight. Streams take a
    partition's events in order, so it was dropped (or acked unprocessed) and must be
    fetched again; None when nothing is missing."""
    if expected is None or not acked or acked[0] <= expected:
        return None
    return None if expected in set(in_flight) else expected


STALL_SECONDS = 8.0


def stalled_partitions(lagging: Mapping[Partition, int], busy: set, now: float,
                       suspects: dict[Partition, tuple[int, float]]
                       ) -> list[tuple[Partition, int]]:
    """Partitions that hold events after their committed offset while none of them is
    queued, in flight or processed, for ``STALL_SECONDS``: the tail of a partition that
    faust dropped (nothing later arrives to reveal the jump). ``suspects`` is updated."""
    stalled = []
    for tp in list(suspects):
        if tp not in lagging or tp in busy or suspects[tp][0] != lagging[tp]:
            del suspects[tp]
    for tp, committed in lagging.items():
        if tp in busy:
            continue
        since = suspects.setdefault(tp, (committed, now))[1]
        if now - since >= STALL_SECONDS:
            stalled.append((tp, committed))
            del suspects[tp]
    return stalled


def counts_for_commit(tracked: bool, generation: int | None, current_generation: int,
                      skipped: bool = False) -> bool:
    """Whether an acked event may move the committed offset (see rules 2 and 4 above)."""
    return (tracked and not skipped
            and (generation is None or generation == current_generation))


def acked_unprocessed(flow_active: bool, generation: int | None,
                      current_generation: int) -> bool:
    """Whether a stream's ack may be of an event it did not process (rule 4): faust acks
    the events it skips while flow is suspended or after their generation ended."""
    return not flow_active or (generation is not None and generation != current_generation)


def partitions_to_rewind(committed: Mapping[Partition, int | None],
                         is_changelog: Callable[[Partition], bool]) -> list[Partition]:
    """Stream partitions without a committed offset: the ones aiokafka did not seek
    (rule 3 above). Changelogs are left to table recovery, which seeks them itself."""
    return [tp for tp, offset in committed.items()
            if (offset is None or offset <= 0) and not is_changelog(tp)]


#: The versions these patches were written against, and the source of each method they
#: replace (sha256 of ``inspect.getsource``, first 16 hex): anything else and a worker
#: refuses to start, rather than silently losing events again after an upgrade.
PATCHED_VERSIONS = {"faust-streaming": "0.15.3", "mode-streaming": "0.7.1",
                    "aiokafka": "0.14.0"}
PATCHED_SOURCES = {
    "Consumer.ack": "5fcf41cf45153475",
    "Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "Consumer.perform_seek": "0e8c130ff4b0afd8",
    "Consumer.wait_empty": "e4662fe24f094819",
    "Consumer._add_gap": "4df2573ded7c1c2c",
    "Consumer.getmany": "4b168d84882a70d6",
    "Consumer.commit": "a354437baaa08bf8",
    "Event.ack": "2d29a6eda87c4ce5",
    "FlowControlEvent.clear": "dda5e40d80288a8f",
}


def patch_mismatches() -> list[str]:
    """How the installed faust differs from what the patches were written against
    (before :func:`install`: afterwards the methods are the patches themselves)."""
    import hashlib
    import inspect
    from importlib.metadata import PackageNotFoundError, version

    from faust.events import Event
    from faust.transport.consumer import Consumer
    from mode.utils.queues import FlowControlEvent

    problems = []
    for package, wanted in PATCHED_VERSIONS.items():
        try:
            found = version(package)
        except PackageNotFoundError:
            found = "not installed"
        if found != wanted:
            problems.append(f"{package} {found} (the patches are for {wanted})")
    owners = {"Consumer": Consumer, "Event": Event, "FlowControlEvent": FlowControlEvent}
    for target, wanted in PATCHED_SOURCES.items():
        owner, name = target.split(".")
        source = inspect.getsource(getattr(owners[owner], name))
        if hashlib.sha256(source.encode()).hexdigest()[:16] != wanted:
            problems.append(f"{target} is not the method the patch replaces")
    return problems


def install(rebalance_wait_seconds: float = 60.0) -> None:
    """Patch faust's consumer, events and flow control (idempotent); refuse a faust the
    patches were not written for (ConfigurationError names what differs)."""
    from faust.events import Event
    from faust.transport.consumer import Consumer
    from faust.types.tuples import ack_lock
    from mode.utils.queues import FlowControlEvent

    from imaging.errors import ConfigurationError
    from streams.metrics import FAUST_HEALS

    Consumer._imgstream_wait_seconds = rebalance_wait_seconds
    if getattr(Consumer, "_imgstream_fixed", False):
        return
    mismatches = patch_mismatches()
    if mismatches:
        raise ConfigurationError("the faust patches (streams/faust_fixes.py) do not fit the "
                                 "installed packages: " + "; ".join(mismatches))
    original_ack = Consumer.ack
    original_event_ack = Event.ack
    original_wait_empty = Consumer.wait_empty
    original_add_gap = Consumer._add_gap
    original_getmany = Consumer.getmany
    original_commit = Consumer.commit

    def event_ack(self: Any) -> bool:
        app, message = self.app, self.message
        if acked_unprocessed(app.flow_control.is_active(), message.generation_id,
                             app.consumer_generation_id):
            _not_processed.add(message)
            FAUST_HEALS.labels("skipped_not_committed").inc()
        return original_event_ack(self)

    def clear_buffers(self: Any) -> None:
        for queue in list(self._queues):
            dropped = list(queue._queue)
            queue.clear()
            for item in dropped:  # release their references, unprocessed (rule 4)
                if isinstance(item, Event):
                    FAUST_HEALS.labels("buffer_released").inc()
                    _not_processed.add(item.message)
                    original_event_ack(item)

    async def wait_empty(self: Any) -> None:
        try:
            await asyncio.wait_for(original_wait_empty(self),
                                   timeout=self._imgstream_wait_seconds)
        except TimeoutError:
            FAUST_HEALS.labels("wait_empty_timeout").inc()
            still = sorted((m.topic, m.partition, m.offset)
                           for m in list(self._unacked_messages) if not m.acked)
            log.warning("Stopped waiting for %d events in flight after %.0fs: they are not "
                        "committed and will be delivered again (%s)", len(still),
                        self._imgstream_wait_seconds, still[:10])
            await self.commit_and_end_transactions()

    def ack(self: Any, message: Any) -> bool:
        if counts_for_commit(message.tracked, message.generation_id,
                             self.app.consumer_generation_id, message in _not_processed):
            return original_ack(self, message)
        with ack_lock:
            if not message.acked:  # done with it, but its offset must be read again
                message.acked = True
                self._unacked_messages.discard(message)
        return False

    def new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:  # offsets absent from the log (as faust does): count them as acked
            max_offset = max(acked)
            candidates = sorted(gaps.overlap(0, max_offset), key=lambda x: x.begin)
            if candidates:
                filled = [o for entry in candidates for o in range(entry.begin, entry.end)]
                acked.extend(filled)
                gaps.chop(0, max(filled[-1], max_offset + 1))
        acked.sort()
        in_flight = [m.offset for m in list(self._unacked_messages)
                     if m.tp == tp and not m.acked]
        committed = self._committed_offset[tp]
        offset = next_commit_offset(acked, committed, in_flight)
        missing = lost_offset(acked, committed, in_flight)
        if missing is not None:
            request_rewind(self, tp, missing, "was never processed")
        done = [o for o in acked if o < max(offset or 0, committed or 0)]
        acked[: len(done)] = []
        self._acked_index[tp].difference_update(done)
        return offset

    def pending(self: Any, name: str) -> dict:
        return self.__dict__.setdefault(name, {})

    def request_rewind(self: Any, tp: Any, offset: int, why: str) -> None:
        """Fetch ``tp`` again from ``offset`` before the next fetch (at most every 10 s for
        the same offset: the events need time to come back)."""
        rewound = pending(self, "_imgstream_rewound_at")
        now = time.monotonic()
        last = rewound.get(tp)
        if last is not None and last[0] == offset and now - last[1] < 10.0:
            return
        rewound[tp] = (offset, now)
        FAUST_HEALS.labels("rewind").inc()
        rewind = pending(self, "_imgstream_rewind")
        rewind[tp] = min(offset, rewind.get(tp, offset))
        self.log.warning("%s[%d]: offset %d %s; reading the partition again from there",
                         tp.topic, tp.partition, offset, why)

    async def add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        rewound = pending(self, "_imgstream_gaps")
        if rewound.get(tp) == offset_from:  # read again from there and still absent
            del rewound[tp]
            await original_add_gap(self, tp, offset_from, offset_to)
            return
        rewound[tp] = offset_from
        request_rewind(self, tp, offset_from,
                       f"(to {offset_to - 1}) was fetched but never delivered")

    def check_stalls(self: Any) -> None:
        app = self.app
        suspects = pending(self, "_imgstream_suspects")
        if not self.flow_active or not app.flow_control.is_active() or app.rebalancing:
            suspects.clear()
            return
        busy = {(m.topic, m.partition) for m in list(self._unacked_messages) if not m.acked}
        busy |= {(tp[0], tp[1]) for tp, acked in list(self._acked.items()) if acked}
        for queue in list(app.flow_control._queues):
            for item in list(queue._queue):
                message = getattr(item, "message", None)
                if message is not None:
                    busy.add((message.topic, message.partition))
        lagging = {}
        for tp in self.assignment():
            if self._is_changelog_tp(tp) or tp in self._paused_partitions:
                continue
            committed, end = self._committed_offset.get(tp), self.highwater(tp)
            if committed is not None and end is not None and end > committed:
                lagging[(tp.topic, tp.partition)] = committed
        for (topic, partition), offset in stalled_partitions(lagging, busy,
                                                             time.monotonic(), suspects):
            tp = next(t for t in self.assignment() if (t.topic, t.partition) == (topic,
                                                                                 partition))
            request_rewind(self, tp, offset, "and later events wait, none on its way")

    async def commit(self: Any, *args: Any, **kwargs: Any) -> bool:
        result = await original_commit(self, *args, **kwargs)
        try:
            check_stalls(self)
        except Exception:  # a heuristic must never break committing
            log.exception("stalled-partition check failed")
        return result

    async def getmany(self: Any, timeout: float) -> Any:
        rewind = pending(self, "_imgstream_rewind")
        if rewind:
            assigned = self.assignment()
            for tp, offset in list(rewind.items()):
                del rewind[tp]
                if tp in assigned:
                    await self.seek(tp, offset)
        async for item in original_getmany(self, timeout):
            yield item

    async def perform_seek(self: Any) -> None:
        committed = dict(await self.seek_to_committed())
        rewind = partitions_to_rewind(committed, self._is_changelog_tp)
        if rewind and self.app.conf.consumer_auto_offset_reset == "earliest":
            first = await self.earliest_offsets(*rewind)
            self.log.info("Seek %d partitions never committed to their first offset",
                          len(rewind))
            FAUST_HEALS.labels("seek_uncommitted").inc(len(rewind))
            for tp in rewind:
                offset = first.get(tp) or 0
                await self._seek(tp, offset)
                committed[tp] = offset
        known = {tp: offset if offset is not None and offset >= 0 else None
                 for tp, offset in committed.items()}
        self._read_offset.update(known)
        self._committed_offset.update(known)

    Consumer.ack = ack
    Consumer._new_offset = new_offset
    Consumer.perform_seek = perform_seek
    Consumer.wait_empty = wait_empty
    Consumer._add_gap = add_gap
    Consumer.getmany = getmany
    Consumer.commit = commit
    Event.ack = event_ack
    FlowControlEvent.clear = clear_buffers
    Consumer._imgstream_fixed = True
