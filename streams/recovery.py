"""A broker that came back without our topics: start the worker again, re-drive the rest.

Every ``broker_watch_seconds`` the worker lists the broker's topics (its own admin
connection, bounded by timeouts). ``streams.broker_loss.BrokerLossWatch`` decides; when
topics this worker had seen are gone from a broker that answers, the broker lost
everything (memory storage, a wiped volume): the committed offsets, the changelogs and the
events in flight. faust cannot follow that in-process, so the worker replaces itself
(``execve`` of the same command line: same pid, fresh faust state, topics declared again,
the budget rebuilt from MySQL) and tells its next life when the loss happened. The next
life, once its topics exist, drives every photo left unfinished since then through the
pipeline again from its stored original (``streams.ingest.redrive_stranded``); event
ids are deterministic, so work that had survived is only done again, never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from imaging.errors import RetryableError
from streams.app import Worker
from streams.broker_loss import LOST_AT_ENV, BrokerLossWatch, lost_at_from, stranded_age
from streams.topics import TOPIC_SPECS

log = logging.getLogger(__name__)


async def list_topics(bootstrap: str, timeout: float = 8.0) -> set[str] | None:
    """The broker's topic names; None when it cannot be listed within ``timeout`` seconds
    (down, hung, partitioned, refusing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)

    async def listing() -> set[str]:
        try:
            await admin.start()
            return set(await admin.list_topics())
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    try:  # bounded as a whole: a watch that hangs would watch nothing
        return await asyncio.wait_for(listing(), timeout)
    except Exception:
        return None


def start_again(lost: frozenset[str]) -> None:
    """Replace this process with a new life of the same worker command."""
    log.error("the broker lost %d of our topics (%s...): its offsets, changelogs and the "
              "events in flight are gone; starting this worker again", len(lost),
              ", ".join(sorted(lost)[:3]))
    env = {**os.environ, LOST_AT_ENV: repr(time.time())}
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def register(worker: Worker) -> None:
    settings = worker.settings
    lost_at = lost_at_from(os.environ)
    os.environ.pop(LOST_AT_ENV, None)  # one re-drive per loss, not one per later restart
    if settings.broker_watch_seconds <= 0:
        return
    watch = BrokerLossWatch(frozenset(settings.topic_name(spec.name)
                                      for spec in TOPIC_SPECS.values()))

    @worker.app.service
    class BrokerWatch(Service):
        """Lists the broker's topics; re-drives what a lost broker stranded."""

        async def on_started(self) -> None:
            # Declared (SharedResources did it; maybe_declare runs once): from now on a
            # broker without them lost them, even if it crashes before the first listing.
            for topic in worker.topics.all():
                await topic.maybe_declare()
            watch.declared()
            if lost_at is not None:
                self.add_future(self._redrive_stranded(lost_at))

        @Service.task
        async def _watch(self) -> None:
            while not self.should_stop:
                await self.sleep(settings.broker_watch_seconds)
                lost = watch.observe(await list_topics(settings.kafka_bootstrap))
                if lost:
                    start_again(lost)

        async def _redrive_stranded(self, lost_at: float) -> None:
            from streams.ingest import redrive_stranded

            log.warning("started again after the broker lost its topics %.0fs ago; photos "
                        "unfinished since then will be driven again", time.time() - lost_at)
            await worker.resources.ready_with_retry()  # topics are declared (on_started)
            delay = 0.5
            while not self.should_stop:
                try:
                    ids = await redrive_stranded(worker, stranded_age(lost_at, time.time()))
                except Exception as exc:  # the database or the broker not there yet
                    log.log(logging.WARNING if isinstance(exc, RetryableError) else logging.ERROR,
                            "re-driving stranded photos: %s: %s; retrying in %.1fs",
                            type(exc).__name__, exc, delay)
                    await self.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                log.warning("drove %d photos stranded by the broker loss again", len(ids))
                return
