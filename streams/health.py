"""Readiness: is a worker doing its job, not only alive? (pure bookkeeping, no I/O)

A worker is ready when the broker answers, its tables have recovered and no input topic
it consumes has stalled: events waiting (lag) while nothing was committed for
``stall_seconds``. The consumer's offsets are read by ``streams.web``; this module only
remembers them between checks and decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StallWatch:
    """Per topic: the committed position last seen and when it last moved."""

    stall_seconds: float = 120.0
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def stalled(self, positions: dict[str, tuple[int, int]], now: float) -> list[str]:
        """Topics whose events wait while their committed position has not moved for
        ``stall_seconds``. ``positions``: topic -> (sum of committed offsets, lag)."""
        stalled = []
        for topic, (committed, lag) in positions.items():
            before = self._seen.get(topic)
            if before is None or before[0] != committed or lag == 0:
                self._seen[topic] = (committed, now)
                continue
            if now - before[1] >= self.stall_seconds:
                stalled.append(topic)
        return sorted(stalled)
