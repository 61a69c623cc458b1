"""Offsets are committed only up to the first event not processed yet."""

import pytest

from streams.faust_fixes import counts_for_commit, install, next_commit_offset


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


def test_install_patches_faust_once():
    from faust.transport.consumer import Consumer

    install()
    patched = Consumer._new_offset, Consumer.ack
    install()
    assert (Consumer._new_offset, Consumer.ack) == patched and Consumer._imgstream_fixed
