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

With several workers, a missing topic is not enough: the first worker to notice starts
again and its faust creates the topics anew, and a worker that lists them only after that
finds every topic present. So the broker also carries an epoch: a topic (``EPOCH_TOPIC``,
one partition) whose first record is a random value written by the first worker to find
it empty. Every worker remembers the epoch it found; a broker that answers with another
one, or with none, was lost and its topics recreated under us. End offsets cannot tell
(a recreated topic that has received more records than the old one had shows no offset
going backwards) and aiokafka 0.14 speaks Metadata up to v5 only (topic ids are v10+).

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

#: The broker's epoch topic (before the topic prefix): its first record is the epoch.
EPOCH_TOPIC = "imgstream.broker-epoch"


@dataclass
class BrokerLossWatch:
    """Decides from successive topic listings and epochs whether the broker lost our topics.

    ``expected`` are the topic names this worker declares (the epoch topic among them).
    The watch arms once they were declared or seen (before that, missing topics mean
    nothing: a worker starting against a fresh broker declares them first); after that, a
    broker that answers without some of them has lost them. A broker that does not answer
    is down, not lost: waited out.

    The epoch: the first one read is remembered; a broker that answers with every topic but
    another epoch (or an empty epoch topic) was lost and its topics created again by
    another worker: every expected topic is lost then (``cause`` says which test fired).
    """

    expected: frozenset[str]
    armed: bool = False
    epoch: str | None = None
    cause: str = ""

    def declared(self, epoch: str | None = None) -> None:
        """This worker created (or found) every expected topic: arm the watch; ``epoch``:
        the broker's epoch it established, if known yet."""
        self.armed = True
        self.remember(epoch)

    def remember(self, epoch: str | None) -> None:
        """The broker's epoch as this worker established it (the first one known wins)."""
        if self.epoch is None and epoch:
            self.epoch = epoch

    def observe(self, present: set[str] | frozenset[str] | None,
                epoch: str | None = None) -> frozenset[str]:
        """The expected topics the broker lost (empty: none, or nothing to conclude).
        ``present`` is the broker's topic list, None when it could not be listed; ``epoch``
        the first record of the epoch topic, "" when that topic is empty, None when it
        could not be read."""
        if present is None:
            return frozenset()
        missing = self.expected - set(present)
        if missing:
            if not self.armed:
                return frozenset()
            self.cause = f"{len(missing)} of our topics are missing"
            return frozenset(missing)
        self.armed = True
        if epoch is None:
            return frozenset()
        if self.epoch is None:
            self.remember(epoch)
            return frozenset()
        return self.expected if self.superseded(epoch) else frozenset()


    def superseded(self, epoch: str | None) -> bool:
        """Whether ``epoch`` (read just now, as for :meth:`observe`) shows the broker was
        lost since this worker learnt its epoch: then it must not pay for anything more
        (another worker's new life rebuilt the budget without it)."""
        if self.epoch is None or epoch is None or epoch == self.epoch:
            return False
        self.cause = (f"the broker's epoch changed from {self.epoch} to {epoch or 'none'}"
                      " (its topics were created again)")
        return True


def orphaned_topics(listed: Mapping[str, Mapping[int, tuple[int, int]]]) -> list[str]:
    """The topics the broker does not have but holds records of, to remove before they
    are created. ``listed``: per topic absent from the broker's topic list, per partition,
    ListOffsets(latest) as (error code, offset). Apache Kafka answers an unknown topic
    with an error; tansu answers from the batches it stored under that name."""
    return sorted(topic for topic, partitions in listed.items()
                  if any(error == 0 and offset > 0 for error, offset in partitions.values()))


def settle_seconds(watch_seconds: float, probe_seconds: float = 3.0) -> float:
    """How long a worker starting again after a loss waits, between writing the new epoch
    and its faust creating the topics, for the other workers to notice the epoch and end
    their previous lives (a watch interval and one probe); then it removes again the
    records those previous lives wrote to vanished topics meanwhile. No wait without a
    watch: the others would notice nothing."""
    return watch_seconds + probe_seconds if watch_seconds > 0 else 0.0


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
