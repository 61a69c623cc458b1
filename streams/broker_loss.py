"""Noticing a broker that came back without its topics, and what is stranded then (pure).

A broker on memory storage (the embedded tansu) that restarts comes back empty: every
topic, committed offset and changelog is gone, with the events of the photos in flight.
A running faust worker cannot follow it (measured in tests/e2e/test_broker_restart.py:
its revocation retried offset commits to the vanished topics for 4 minutes, then table
recovery waited forever for changelog offsets that no longer exist). So the worker
watches the broker's topic list (``streams.recovery``), and when topics it had seen are
missing from a broker that answers, it starts again (same process, fresh faust state) and
drives the photos left unfinished through the pipeline again from their originals.

Before the next life declares its topics, records the broker holds for topics it does not
have are removed (``orphaned_topics``). tansu takes produce requests for a topic it does
not know, from a client that still has the topic's metadata: the previous life, in the
seconds before it noticed the loss. It stores those batches under the topic's name, and
creating the topic afterwards resets the partition's watermark but keeps the batches.
Measured (tansu 0.6.0, memory storage): ListOffsets(latest) then counts them while fetches
stop at the watermark, so faust's table recovery waited forever for offsets it could never
fetch; and the first produces to the partition collide with them (UnknownError) and then
serve the previous life's records. Deleting the topic removes its batches.

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


def orphaned_topics(listed: Mapping[str, Mapping[int, tuple[int, int]]]) -> list[str]:
    """The topics the broker does not have but holds records of, to remove before they
    are created. ``listed``: per topic absent from the broker's topic list, per partition,
    ListOffsets(latest) as (error code, offset). Apache Kafka answers an unknown topic
    with an error; tansu answers from the batches it stored under that name."""
    return sorted(topic for topic, partitions in listed.items()
                  if any(error == 0 and offset > 0 for error, offset in partitions.values()))


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
