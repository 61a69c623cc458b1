"""Offsets are committed only up to the first event not processed yet."""

import asyncio
import logging
from types import SimpleNamespace

import pytest

from streams import faust_fixes
from streams.faust_fixes import (
    acked_unprocessed,
    counts_for_commit,
    install,
    lost_offset,
    next_commit_offset,
    partitions_to_rewind,
    stalled_partitions,
)


@pytest.mark.parametrize("acked, expected, in_flight, commit", [
    ([40, 41, 42], 40, [], 43),         # all done
    ([41], 40, [40], None),             # 40 still in flight: faust 0.15.3 committed 42 here
    ([41, 42], 40, [], None),           # 40 not processed (skipped in a rebalance)
    ([40, 41, 43], 40, [42], 42),       # stop at the first gap
    ([1, 2], 0, [0], None),             # first commit of a new group: 0 still in flight
    ([0, 1, 2], 0, [], 3),
    ([38, 39, 40, 41], 40, [], 42),     # acks below the committed offset are old news
    ([38, 39], 40, [], None),
    ([5, 6], None, [], 7),              # nothing committed yet: the first run...
    ([6], None, [5], None),             # ...but never past an event in flight
    ([5, 6, 8], None, [7], 7),
    ([5, 6], None, [9], 7),
    ([], 3, [], None),
])
def test_next_commit_offset(acked, expected, in_flight, commit):
    assert next_commit_offset(acked, expected, in_flight) == commit


@pytest.mark.parametrize("tracked, generation, current, counts", [
    (True, 7, 7, True),      # processed in this generation
    (False, 7, 7, False),    # skipped by the stream during a rebalance, never processed
    (True, 6, 7, False),     # processed for a generation that has ended: read it again
    (True, None, 7, True),   # no generation recorded (not from the Kafka driver)
])
def test_counts_for_commit(tracked, generation, current, counts):
    assert counts_for_commit(tracked, generation, current) is counts


def test_an_event_one_stream_skipped_never_counts():
    # images.completed feeds mysql_sink and cdn_sink: one processed it, the other skipped
    # it in a rebalance; committing it would lose the skipping sink's row or invalidation.
    assert not counts_for_commit(True, 7, 7, skipped=True)


@pytest.mark.parametrize("flow_active, generation, current, unprocessed", [
    (True, 7, 7, False),     # the normal ack of a processed event
    (False, 7, 7, True),     # flow suspended: faust acks what it skips (or what ends late)
    (True, 6, 7, True),      # taken in a generation that has ended
    (True, None, 7, False),
])
def test_acked_unprocessed(flow_active, generation, current, unprocessed):
    assert acked_unprocessed(flow_active, generation, current) is unprocessed


def _message(offset: int, refcount: int):
    from faust.types.tuples import TP, ConsumerMessage

    message = ConsumerMessage("t", 0, offset, 0.0, 0, [], b"k", b"v", None, 1, 1,
                              TP("t", 0), generation_id=1)
    message.refcount = refcount
    return message


class _FakeApp:
    def __init__(self):
        from mode.utils.queues import FlowControlEvent

        self.flow_control = FlowControlEvent()
        self.consumer_generation_id = 1
        self.acks: list = []
        self.consumer = SimpleNamespace(ack=lambda m: self.acks.append(m) or True)


def test_clearing_buffers_releases_events_that_another_stream_took():
    """The wait_empty stall: a message taken by one agent and cleared from the other's
    buffer must reach its final ack (so the revocation can finish), uncommitted."""
    import faust.events
    from mode.utils.queues import FlowControlQueue

    install()
    app = _FakeApp()
    taken, buffered = _message(21, refcount=2), _message(22, refcount=1)
    queue = FlowControlQueue(flow_control=app.flow_control, clear_on_resume=True)
    for message in (taken, buffered):
        queue.put_nowait(faust.events.Event(app, b"k", b"v", {}, message))
    faust.events.Event(app, b"k", b"v", {}, taken).ack()  # the first agent is done with 21
    assert taken.refcount == 1 and not app.acks
    app.flow_control.suspend()
    app.flow_control.clear()  # revocation
    assert queue.empty()
    assert app.acks == [taken, buffered]  # both released: nothing left for wait_empty
    assert not counts_for_commit(True, 1, 1, taken in faust_fixes._not_processed)
    assert buffered in faust_fixes._not_processed

def test_install_patches_faust_once():
    from faust.transport.consumer import Consumer

    install()
    patched = Consumer._new_offset, Consumer.ack, Consumer.perform_seek
    install()
    assert (Consumer._new_offset, Consumer.ack, Consumer.perform_seek) == patched
    assert Consumer._imgstream_fixed


def test_partitions_to_rewind_are_stream_partitions_never_committed():
    committed = {("images.ai", 0): 12, ("images.ai", 1): None, ("images.ai", 2): -1001,
                 ("images.ai", 3): 0, ("app-budget-changelog", 0): None}
    rewind = partitions_to_rewind(committed, lambda tp: tp[0].endswith("-changelog"))
    assert rewind == [("images.ai", 1), ("images.ai", 2), ("images.ai", 3)]


class _FakeConsumer:
    """Just what the patched ``perform_seek`` touches (the broker side is e2e-tested)."""

    def __init__(self, committed, earliest, reset="earliest"):
        self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))
        self._committed, self._earliest = committed, earliest
        self._read_offset, self._committed_offset, self.seeks = {}, {}, []
        self.log = logging.getLogger("fake-consumer")

    async def seek_to_committed(self):
        return dict(self._committed)

    def _is_changelog_tp(self, tp):
        return tp[0].endswith("-changelog")

    async def earliest_offsets(self, *tps):
        return {tp: self._earliest[tp] for tp in tps}

    async def _seek(self, tp, offset):
        self.seeks.append((tp, offset))


def test_perform_seek_rewinds_never_committed_partitions_to_their_first_offset():
    from faust.transport.consumer import Consumer

    install()
    fake = _FakeConsumer({("t", 0): 7, ("t", 1): None, ("t-changelog", 0): None},
                         {("t", 1): 3})
    asyncio.run(Consumer.perform_seek(fake))
    assert fake.seeks == [(("t", 1), 3)]  # the skipped events of t/1 are fetched again
    # The first offset counts as committed: the first commit must start exactly there.
    assert fake._committed_offset == {("t", 0): 7, ("t", 1): 3, ("t-changelog", 0): None}
    assert fake._read_offset[("t", 1)] == 3


def test_perform_seek_leaves_positions_alone_when_resetting_to_latest():
    from faust.transport.consumer import Consumer

    install()
    fake = _FakeConsumer({("t", 1): None}, {("t", 1): 0}, reset="latest")
    asyncio.run(Consumer.perform_seek(fake))
    assert fake.seeks == [] and fake._committed_offset == {("t", 1): None}


def test_a_jump_in_offsets_rewinds_once_then_counts_as_a_real_gap():
    """Our topics have no holes: a jump means faust dropped fetched events; read them again."""
    from collections import defaultdict

    from aiokafka import TopicPartition
    from faust.transport.consumer import Consumer
    from intervaltree import IntervalTree

    install()
    fake = SimpleNamespace(log=logging.getLogger("fake-consumer"),
                           _committed_offset=defaultdict(lambda: None),
                           _gap=defaultdict(IntervalTree))
    tp = TopicPartition("images.uploaded", 1)
    asyncio.run(Consumer._add_gap(fake, tp, 45, 47))
    assert fake._imgstream_rewind == {tp: 45} and not fake._gap[tp]  # not counted as acked
    del fake._imgstream_rewind[tp]  # done by the next fetch
    asyncio.run(Consumer._add_gap(fake, tp, 45, 47))  # still absent after the rewind
    assert sorted((i.begin, i.end) for i in fake._gap[tp]) == [(45, 48)]


@pytest.mark.parametrize("acked, expected, in_flight, lost", [
    ([17, 18, 19], 16, [], 16),     # 16 dropped: later events were processed
    ([17, 18], 16, [16], None),     # 16 still being processed
    ([17, 18], 16, [17], 16),       # 16 not taken although 17 was: dropped
    ([16, 17], 16, [], None),       # nothing missing
    ([], 16, [], None),             # nothing processed yet (16 may be on its way)
    ([5], None, [], None),          # no committed offset known
])
def test_lost_offset(acked, expected, in_flight, lost):
    assert lost_offset(acked, expected, in_flight) == lost


def test_a_partition_waiting_with_nothing_on_its_way_is_stalled_after_a_while():
    suspects: dict = {}
    lagging = {"ai/1": 4, "ai/3": 4, "assessed/1": 55}
    busy = {"assessed/1"}  # an event of it is queued or being processed: not stalled
    assert stalled_partitions(lagging, busy, 100.0, suspects) == []
    assert stalled_partitions(lagging, busy, 104.0, suspects) == []
    lagging["ai/3"] = 5  # it moved on meanwhile: watched again from now
    assert stalled_partitions(lagging, busy, 108.5, suspects) == [("ai/1", 4)]
    assert stalled_partitions(lagging, busy, 116.5, suspects) == [("ai/3", 5)]
    assert stalled_partitions({}, set(), 130.0, suspects) == [] and suspects == {}


def _in_fresh_interpreter(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    return done.stdout + done.stderr


def test_the_installed_faust_is_the_one_the_patches_were_written_for():
    out = _in_fresh_interpreter(
        "from streams.faust_fixes import patch_mismatches; print(patch_mismatches())")
    assert out.strip().endswith("[]"), out


def test_a_different_faust_stops_the_worker_with_what_differs():
    out = _in_fresh_interpreter(
        "import streams.faust_fixes as f\n"
        "f.PATCHED_VERSIONS['aiokafka'] = '9.9.9'\n"
        "f.PATCHED_SOURCES['Consumer.commit'] = '0' * 16\n"
        "try:\n    f.install()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
        "from faust.transport.consumer import Consumer\n"
        "print('patched:', getattr(Consumer, '_imgstream_fixed', False))")
    assert "ConfigurationError" in out and "aiokafka 0.14.0 (the patches are for 9.9.9)" in out
    assert "Consumer.commit is not the method the patch replaces" in out
    assert "patched: False" in out
