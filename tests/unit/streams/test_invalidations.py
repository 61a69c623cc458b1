"""Invalidation batching: CloudFront path rules, count/time batches, dedup, references."""

from __future__ import annotations

import pytest

from imaging.errors import PermanentError
from streams.invalidations import (
    MAX_PATH_LENGTH,
    MAX_WILDCARDS_IN_PROGRESS,
    InOrderAcks,
    InvalidationBatcher,
    caller_reference,
    normalize_path,
    path_for_key,
)

# -- paths ----------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("/enhanced/a/current-large.jpg", "/enhanced/a/current-large.jpg"),
    ("enhanced/a.jpg", "/enhanced/a.jpg"),                    # leading '/' added
    ("/images/*", "/images/*"),                               # wildcard last: allowed
    ("/a b.jpg", "/a%20b.jpg"),                               # RFC 1738 unsafe
    ("/café.jpg", "/caf%C3%A9.jpg"),                          # non-ASCII, as UTF-8
    ("/a%20b.jpg", "/a%20b.jpg"),                             # an escape stays as is
    ("/100%.jpg", "/100%25.jpg"),                             # a stray '%' is encoded
    ("/x/{y}|~^[z]`#.jpg", "/x/%7By%7D%7C%7E%5E%5Bz%5D%60%23.jpg"),
    ("/p?v=2", "/p?v=2"),                                     # query strings stay
    ("/Images/A.JPG", "/Images/A.JPG"),                       # case-sensitive, kept
])
def test_paths_are_normalised_per_cloudfront_rules(raw, expected):
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("bad", ["", "/a*/b.jpg", "/*.jpg", "/" + "a" * MAX_PATH_LENGTH])
def test_invalid_paths_are_permanent_errors(bad):
    with pytest.raises(PermanentError):
        normalize_path(bad)


def test_length_limit_counts_the_encoded_form():
    assert len(normalize_path("/" + "a" * (MAX_PATH_LENGTH - 1))) == MAX_PATH_LENGTH
    with pytest.raises(PermanentError, match="encoded"):
        normalize_path("/" + " " * 1500)  # 1501 characters, 4501 once encoded


def test_object_keys_are_literal():
    assert path_for_key("enhanced/abc/current-large.jpg") == "/enhanced/abc/current-large.jpg"
    assert path_for_key("odd/*name?.jpg") == "/odd/%2Aname%3F.jpg"  # no wildcard, no query
    assert path_for_key("odd/50%.jpg") == "/odd/50%25.jpg"
    with pytest.raises(PermanentError):
        path_for_key("/")


# -- batching ---------------------------------------------------------------------------

def test_count_batches_are_cut_when_full_and_never_larger():
    batcher = InvalidationBatcher(max_paths=3, window_seconds=5)
    assert batcher.add(["/a", "/b"], now=0.0, source="e1") == []
    full = batcher.add(["/c", "/d", "/e", "/f", "/g"], now=0.1, source="e2")
    assert [b.paths for b in full] == [("/a", "/b", "/c"), ("/d", "/e", "/f")]
    assert all(len(b.paths) <= 3 for b in full)
    assert batcher.pending_paths == 1
    assert full[0].sources == {"e1", "e2"} and full[1].sources == {"e2"}


def test_window_starts_with_the_first_pending_path():
    batcher = InvalidationBatcher(max_paths=100, window_seconds=5)
    assert batcher.due(100.0) is None and batcher.next_due() is None
    batcher.add(["/a"], now=10.0, source="e1")
    batcher.add(["/b"], now=14.0, source="e2")
    assert batcher.next_due() == 15.0
    assert batcher.due(14.9) is None
    batch = batcher.due(15.0)
    assert batch is not None and batch.paths == ("/a", "/b")
    assert batcher.due(100.0) is None and batcher.pending_paths == 0
    batcher.add(["/c"], now=30.0, source="e3")  # a new window after the cut
    assert batcher.next_due() == 35.0


def test_paths_already_pending_are_deduplicated_and_sorted():
    batcher = InvalidationBatcher(max_paths=100, window_seconds=1)
    batcher.add(["/z", "/a", "a", "/a"], now=0.0, source="e1")   # 'a' normalises to '/a'
    batcher.add(["/a", "/m"], now=0.1, source="e2")
    batch = batcher.due(5.0)
    assert batch is not None
    assert batch.paths == ("/a", "/m", "/z")
    assert batch.sources == {"e1", "e2"}


def test_wildcards_per_batch_stay_within_the_in_progress_limit():
    batcher = InvalidationBatcher(max_paths=1000, window_seconds=1)
    wildcards = [f"/dir{i:02d}/*" for i in range(MAX_WILDCARDS_IN_PROGRESS + 3)]
    full = batcher.add([*wildcards, "/plain"], now=0.0, source="e1")
    assert len(full) == 1 and full[0].wildcards == MAX_WILDCARDS_IN_PROGRESS
    rest = batcher.due(2.0)
    assert rest is not None and rest.wildcards == 3 and "/plain" in rest.paths


def test_max_paths_is_capped_at_cloudfronts_in_progress_limit():
    assert InvalidationBatcher(max_paths=10_000, window_seconds=1).max_paths == 3000


def test_invalid_paths_reject_the_whole_add():
    batcher = InvalidationBatcher(max_paths=10, window_seconds=1)
    with pytest.raises(PermanentError):
        batcher.add(["/ok", "/bad*/x"], now=0.0, source="e1")
    assert batcher.pending_paths == 0 and batcher.outstanding_sources == 0


# -- caller references --------------------------------------------------------------------

def test_redelivered_batch_has_the_same_reference_and_new_content_a_new_one():
    def batch_of(adds):
        batcher = InvalidationBatcher(max_paths=100, window_seconds=1)
        for paths, source in adds:
            batcher.add(paths, now=0.0, source=source)
        return batcher.due(1.0)

    first = batch_of([(["/b", "/a"], "e1"), (["/c"], "e2")])
    again = batch_of([(["/c"], "e2"), (["/a", "/b"], "e1")])  # other order, same content
    newer = batch_of([(["/b", "/a"], "e1-v2"), (["/c"], "e2")])  # same paths, new result
    assert first.caller_reference == again.caller_reference
    assert first.caller_reference == caller_reference(["/a", "/b", "/c"], ["e1", "e2"])
    assert newer.paths == first.paths and newer.caller_reference != first.caller_reference


def test_adds_without_source_are_never_mistaken_for_each_other():
    batcher = InvalidationBatcher(max_paths=100, window_seconds=1)
    batcher.add(["/a"], now=0.0)
    one = batcher.due(1.0)
    batcher.add(["/a"], now=2.0)
    two = batcher.due(3.0)
    assert one.caller_reference != two.caller_reference


def test_confirmed_references_are_remembered():
    batcher = InvalidationBatcher(max_paths=100, window_seconds=1)
    batcher.add(["/a"], now=0.0, source="e1")
    batch = batcher.due(1.0)
    assert not batcher.already_confirmed(batch)
    batcher.settle(batch, succeeded=True)
    batcher.add(["/a"], now=2.0, source="e1")  # the same event delivered again
    again = batcher.due(3.0)
    assert batcher.already_confirmed(again)


def test_failed_batches_are_not_remembered_as_confirmed():
    batcher = InvalidationBatcher(max_paths=100, window_seconds=1)
    batcher.add(["/a"], now=0.0, source="e1")
    batch = batcher.due(1.0)
    assert batcher.settle(batch, succeeded=False) == ["e1"]
    assert not batcher.already_confirmed(batch)


# -- settling sources ---------------------------------------------------------------------

def test_a_source_split_over_batches_settles_with_its_last_batch():
    batcher = InvalidationBatcher(max_paths=2, window_seconds=1)
    full = batcher.add(["/a", "/b", "/c"], now=0.0, source="e1")
    batcher.add(["/c"], now=0.0, source="e2")  # deduplicated onto e1's pending '/c'
    assert len(full) == 1
    assert batcher.settle(full[0], succeeded=True) == []           # e1 still has '/c'
    last = batcher.due(1.0)
    assert last.paths == ("/c",) and last.sources == {"e1", "e2"}
    assert sorted(batcher.settle(last, succeeded=True)) == ["e1", "e2"]
    assert batcher.outstanding_sources == 0


def test_the_same_source_twice_in_a_window_counts_once():
    batcher = InvalidationBatcher(max_paths=10, window_seconds=1)
    batcher.add(["/a", "/b"], now=0.0, source="e1")
    batcher.add(["/a", "/b"], now=0.5, source="e1")  # redelivered within the window
    batch = batcher.due(1.0)
    assert batcher.settle(batch, succeeded=True) == ["e1"]
    assert batcher.outstanding_sources == 0


# -- ack order -----------------------------------------------------------------------------

def test_acks_are_released_in_order_per_partition():
    acks: InOrderAcks[str] = InOrderAcks()
    for item, lane in [("p0-10", 0), ("p0-11", 0), ("p1-5", 1), ("p0-12", 0)]:
        acks.track(lane, item)
    acks.done("p0-11")       # finished early (dead-lettered, no paths)
    acks.done("p1-5")
    assert acks.release() == ["p1-5"]   # p0-11 waits behind p0-10
    acks.done("p0-10")
    assert acks.release() == ["p0-10", "p0-11"]
    acks.done("p0-12")
    assert acks.release() == ["p0-12"] and len(acks) == 0
