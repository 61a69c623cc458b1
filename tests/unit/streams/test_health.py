"""The stall rule of readiness (pure)."""

from streams.health import StallWatch


def test_a_topic_with_lag_and_no_progress_stalls_after_the_window():
    watch = StallWatch(stall_seconds=60)
    assert watch.stalled({"images.assessed": (100, 5)}, now=0) == []
    assert watch.stalled({"images.assessed": (100, 5)}, now=59) == []
    assert watch.stalled({"images.assessed": (100, 5)}, now=61) == ["images.assessed"]


def test_progress_or_no_lag_is_not_a_stall():
    watch = StallWatch(stall_seconds=60)
    watch.stalled({"t": (100, 5)}, now=0)
    assert watch.stalled({"t": (101, 5)}, now=100) == []   # it moved
    assert watch.stalled({"t": (101, 0)}, now=300) == []   # nothing waiting
    assert watch.stalled({"t": (101, 3)}, now=330) == []   # the window starts again
