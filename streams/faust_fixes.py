"""A fix for faust-streaming 0.15.3 committing offsets past events still being processed.

Agents with ``concurrency > 1`` (assess, enhance_local, enhance_ai, finalize) finish the
events of one partition out of order. faust commits the first run of consecutive acked
offsets, and checks for an unacked event at the head of that run like this
(``Consumer._new_offset``)::

    if committed_offset:                              # skipped for None and 0
        if min(acked) - committed_offset > 1:         # off by one: 1 is already a gap
            return None

With offsets 40 and 41 in flight and 41 acked first, it commits 42: a SIGKILL then loses
event 40 for good (found by the kill tests: an image stuck in ``analyzed``, a budget
reservation never settled). The committed offset is the next offset to read, so any
acked offset above it means a gap. When the group has no committed offset yet, the
first offset delivered for the partition since its assignment is the expected one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def next_commit_offset(acked: Sequence[int], expected: int | None) -> int | None:
    """The offset to commit for sorted ``acked`` offsets, or None while the next expected
    offset (the committed one, else the first delivered) is not acked yet."""
    if not acked or (expected is not None and acked[0] > expected):
        return None
    end = acked[0]
    for offset in acked[1:]:
        if offset != end + 1:
            break
        end = offset
    return end + 1


def install() -> None:
    """Patch faust's consumer (idempotent)."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, "_imgstream_fixed", False):
        return
    track_message = Consumer.track_message
    perform_seek = Consumer.perform_seek

    def first_offsets(self: Any) -> dict:
        return self.__dict__.setdefault("_imgstream_first_offsets", {})

    def tracking(self: Any, message: Any) -> None:
        first = first_offsets(self)
        if message.tp not in first or message.offset < first[message.tp]:
            first[message.tp] = message.offset
        track_message(self, message)

    async def seeking(self: Any) -> None:
        first_offsets(self).clear()
        await perform_seek(self)

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
        committed = self._committed_offset[tp]
        expected = committed if committed is not None else first_offsets(self).get(tp)
        offset = next_commit_offset(acked, expected)
        if offset is None:
            return None
        done = [o for o in acked if o < offset]
        acked[: len(done)] = []
        self._acked_index[tp].difference_update(done)
        return offset

    Consumer.track_message = tracking
    Consumer.perform_seek = seeking
    Consumer._new_offset = new_offset
    Consumer._imgstream_fixed = True
