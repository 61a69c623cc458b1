"""Offsets are committed only up to the first event not yet acked."""

import pytest

from streams.faust_fixes import install, next_commit_offset


@pytest.mark.parametrize("acked, expected, commit", [
    ([40, 41, 42], 40, 43),          # all done
    ([41], 40, None),                # 40 still in flight: faust 0.15.3 committed 42 here
    ([41, 42], 40, None),
    ([40, 41, 43], 40, 42),          # stop at the first gap
    ([1, 2], 0, None),               # first commit of a new group: 0 still in flight
    ([0, 1, 2], 0, 3),
    ([5, 6], None, 7),               # nothing known: the first run (faust's behaviour)
    ([], 3, None),
])
def test_next_commit_offset(acked, expected, commit):
    assert next_commit_offset(acked, expected) == commit


def test_install_patches_faust_once():
    from faust.transport.consumer import Consumer

    install()
    patched = Consumer._new_offset
    install()
    assert Consumer._new_offset is patched and Consumer._imgstream_fixed
