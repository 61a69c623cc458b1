"""Fixes for faust-streaming 0.15.3 committing offsets of events never processed.

Found by the kill tests (an image stuck in ``analyzed``, a budget reservation never
settled); each one loses events for good when a worker dies or a partition moves:

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

The fixed rules: an ack counts towards a commit only for an event a stream really took
(``tracked``) in the current consumer generation; a skipped event is simply fetched
again after the rebalance's seek to the committed offset. A stream
partition with no committed offset is sought to its first offset (we reset to
``earliest``), and that offset counts as committed, so the first commit must start
there. The commit is the end of the run of acked offsets that starts at the committed
offset, and never passes an event still in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

Partition = TypeVar("Partition")


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


def counts_for_commit(tracked: bool, generation: int | None, current_generation: int) -> bool:
    """Whether an acked event may move the committed offset (see rule 2 above)."""
    return tracked and (generation is None or generation == current_generation)


def partitions_to_rewind(committed: Mapping[Partition, int | None],
                         is_changelog: Callable[[Partition], bool]) -> list[Partition]:
    """Stream partitions without a committed offset: the ones aiokafka did not seek
    (rule 3 above). Changelogs are left to table recovery, which seeks them itself."""
    return [tp for tp, offset in committed.items()
            if (offset is None or offset <= 0) and not is_changelog(tp)]


def install() -> None:
    """Patch faust's consumer (idempotent)."""
    from faust.transport.consumer import Consumer
    from faust.types.tuples import ack_lock

    if getattr(Consumer, "_imgstream_fixed", False):
        return
    original_ack = Consumer.ack

    def ack(self: Any, message: Any) -> bool:
        if counts_for_commit(message.tracked, message.generation_id,
                             self.app.consumer_generation_id):
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
        done = [o for o in acked if o < max(offset or 0, committed or 0)]
        acked[: len(done)] = []
        self._acked_index[tp].difference_update(done)
        return offset

    async def perform_seek(self: Any) -> None:
        committed = dict(await self.seek_to_committed())
        rewind = partitions_to_rewind(committed, self._is_changelog_tp)
        if rewind and self.app.conf.consumer_auto_offset_reset == "earliest":
            first = await self.earliest_offsets(*rewind)
            for tp in rewind:
                offset = first.get(tp) or 0
                await self._seek(tp, offset)
                committed[tp] = offset
        self._read_offset.update({tp: offset if offset is not None and offset >= 0 else None
                                  for tp, offset in committed.items()})
        self._committed_offset.update({tp: offset if offset is not None and offset >= 0
                                       else None for tp, offset in committed.items()})

    Consumer.ack = ack
    Consumer._new_offset = new_offset
    Consumer.perform_seek = perform_seek
    Consumer._imgstream_fixed = True
