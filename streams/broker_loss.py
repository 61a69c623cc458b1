"""Noticing a broker that came back without its topics, and what is stranded then (pure).

A broker on memory storage (the embedded tansu) that restarts comes back empty: every
topic, committed offset and changelog is gone, with the events of the photos in flight.
A running faust worker cannot follow it (measured in tests/e2e/test_broker_restart.py:
its revocation retried offset commits to the vanished topics for 4 minutes, then table
recovery waited forever for changelog offsets that no longer exist). So the worker
watches the broker's topic list (``streams.recovery``), and when topics it had seen are
missing from a broker that answers, it starts again (same process, fresh faust state) and
drives the photos left unfinished through the pipeline again from their originals.

Nothing here does I/O; ``streams.recovery`` and ``streams.ingest`` do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Photo statuses before a result: a photo in one of them has events still to come.
#: completed, skipped and failed are final (failed photos have their own retry).
UNFINISHED = ("uploaded", "analyzing", "analyzed", "queued", "processing", "enhancing",
              "optimizing")

#: Set by a worker for its next life when it restarts after a broker loss: the wall-clock
#: time of the loss (seconds since the epoch). The next life re-drives what was unfinished.
LOST_AT_ENV = "IMGSTREAM_BROKER_LOST_AT"


@dataclass
class BrokerLossWatch:
    """Decides from successive topic listings whether the broker lost our topics.

    ``expected`` are the topic names this worker declares. The watch arms once they were
    declared or seen (before that, missing topics mean nothing: a worker starting against
    a fresh broker declares them first); after that, a broker that answers without some
    of them has lost them. A broker that does not answer is down, not lost: waited out.
    """

    expected: frozenset[str]
    armed: bool = False

    def declared(self) -> None:
        """This worker created (or found) every expected topic: arm the watch."""
        self.armed = True

    def observe(self, present: set[str] | frozenset[str] | None) -> frozenset[str]:
        """The expected topics the broker lost (empty: none, or nothing to conclude).
        ``present`` is the broker's topic list, None when it could not be listed."""
        if present is None:
            return frozenset()
        missing = self.expected - set(present)
        if not missing:
            self.armed = True
            return frozenset()
        return frozenset(missing) if self.armed else frozenset()


def lost_at_from(environ: Mapping[str, str]) -> float | None:
    """The broker loss a previous life of this worker recorded, if any (a malformed value
    is ignored: it must never stop a worker from starting)."""
    raw = environ.get(LOST_AT_ENV)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def stranded_age(lost_at: float, now: float, margin: float = 1.0) -> float:
    """Re-drive photos whose last change is at least this many seconds old: everything
    unfinished at the loss (plus ``margin`` for the clocks of the worker and the database,
    which ``updated_at`` comes from); photos that moved since have events on the new broker."""
    return max(0.0, now - lost_at - margin)
