"""A broker that came back without our topics: start the worker again, re-drive the rest.

Every ``broker_watch_seconds`` the worker lists the broker's topics (its own admin
connection, bounded by timeouts). ``streams.broker_loss.BrokerLossWatch`` decides; when
topics this worker had seen are gone from a broker that answers, the broker lost
everything (memory storage, a wiped volume): the committed offsets, the changelogs and the
events in flight. faust cannot follow that in-process, so the worker replaces itself
(``execve`` of the same command line: same pid, fresh faust state, topics declared again,
the budget rebuilt from MySQL) and tells its next life when the loss happened. The next
life first removes what the previous one wrote to the empty broker before it noticed
(``purge_orphans``: records of topics the broker does not have, which would otherwise
hang table recovery, see ``streams.broker_loss``); once its topics exist, it drives every
photo left unfinished since then through the pipeline again from its stored original
(``streams.ingest.redrive_stranded``); event ids are deterministic, so work that had
survived is only done again, never doubled.

Several workers: the first to notice starts again and recreates the topics, so the others
may find them all present. Each worker also reads the broker's epoch (the first record of
the epoch topic, ``streams.broker_loss``) with every listing and before every new paid
model call; a new life writes a new epoch before its faust creates any topic, waits a
watch interval for the others to notice it (``settle_seconds``), and removes again what
their previous lives wrote to vanished topics meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.offset import OffsetRequest
from mode import Service

from imaging.errors import RetryableError
from streams.app import Worker
from streams.broker_loss import (
    EPOCH_TOPIC,
    LOST_AT_ENV,
    BrokerLossWatch,
    lost_at_from,
    orphaned_topics,
    settle_seconds,
    stranded_age,
)
from streams.topics import TOPIC_SPECS

log = logging.getLogger(__name__)


async def bounded(coro, timeout: float):
    """``coro`` in a task of its own, its result within ``timeout`` seconds (TimeoutError
    otherwise). Unlike ``asyncio.wait_for``, a CancelledError raised inside (aiokafka
    raises one when a connection it waits on dies with the broker) is an error of the
    probe, RuntimeError here, and does not end the caller's task (measured: it ended the
    watch of a worker whose broker had just been killed, which then never noticed the
    loss). The caller being cancelled cancels the probe."""
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    finally:
        if not task.done():
            task.cancel()
    if not done:
        raise TimeoutError(f"no answer within {timeout:.0f}s")
    if task.cancelled():
        raise RuntimeError("the probe was cancelled from within")
    return task.result()


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
        return await bounded(listing(), timeout)
    except Exception:
        return None


async def read_epoch(bootstrap: str, topic: str, timeout: float = 8.0) -> str | None:
    """The broker's epoch: the first record of ``topic`` (partition 0); "" when the topic
    holds no record, None when it cannot be read within ``timeout`` seconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, request_timeout_ms=3000)
    partition = TopicPartition(topic, 0)

    async def reading() -> str | None:
        try:
            await consumer.start()
            consumer.assign([partition])
            first = (await consumer.beginning_offsets([partition]))[partition]
            end = (await consumer.end_offsets([partition]))[partition]
            if end <= first:
                return ""
            consumer.seek(partition, first)
            batch = await consumer.getmany(partition, timeout_ms=3000, max_records=1)
            records = batch.get(partition) or []
            return records[0].value.decode("utf-8", "replace") if records else None
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    try:
        return await bounded(reading(), timeout)
    except Exception:
        return None


TOPIC_EXISTS = 36  # CreateTopics: TOPIC_ALREADY_EXISTS


async def establish_epoch(bootstrap: str, topic: str, timeout: float = 15.0) -> str | None:
    """The broker's epoch, written first if the broker has none (the epoch topic created
    when missing, a random epoch written when it is empty). Workers writing at the same
    time each append theirs; the first record is the epoch for all. None: not known yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                request_timeout_ms=3000)

    async def establish() -> str | None:
        try:
            await admin.start()
            if topic not in set(await admin.list_topics()):
                created = await admin.create_topics([NewTopic(topic, 1, 1)])
                if created.topic_errors[0][1] not in (0, TOPIC_EXISTS):
                    raise RuntimeError(f"could not create {topic}: {created}")
            epoch = await read_epoch(bootstrap, topic)
            if epoch != "":
                return epoch
            await producer.start()
            await producer.send_and_wait(topic, uuid.uuid4().hex.encode(), key=b"epoch",
                                         partition=0)
            return await read_epoch(bootstrap, topic) or None
        finally:
            for closing in (admin.close, producer.stop):
                with contextlib.suppress(Exception):
                    await closing()

    try:
        return await bounded(establish(), timeout)
    except Exception as exc:
        log.info("broker epoch not established yet: %s: %s", type(exc).__name__, exc)
        return None


LATEST = -1  # ListOffsets: the offset after the last record


async def purge_orphans(bootstrap: str, partitions: dict[str, int],
                        timeout: float = 10.0) -> list[str]:
    """Remove the records the broker holds for those of ``partitions`` (topic name ->
    partition count) it does not have; returns the topics purged. A topic is created and
    deleted again to take its records away; creating it for real is left to faust."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)

    async def purge() -> list[str]:
        try:
            await admin.start()
            present = set(await admin.list_topics())
            absent = {name: n for name, n in partitions.items() if name not in present}
            if not absent:
                return []
            await client.bootstrap()
            node = next(iter(client.cluster.brokers())).nodeId
            response = await client.send(node, OffsetRequest(
                -1, 0, [(name, [(p, LATEST) for p in range(n)]) for name, n in absent.items()]))
            listed = {t["topic"]: {p["partition"]: (p["error_code"], p.get("offset", -1))
                                   for p in t["partitions"]}
                      for t in response.to_object()["topics"]}
            purged = []
            for name in orphaned_topics(listed):
                created = await admin.create_topics([NewTopic(name, absent[name], 1)])
                if created.topic_errors[0][1] != 0:  # exists by now: not ours to delete
                    continue
                deleted = await admin.delete_topics([name])
                if deleted.topic_error_codes[0][1] != 0:
                    raise RuntimeError(f"could not delete {name}: {deleted}")
                purged.append(name)
            return purged
        finally:
            for closing in (admin.close, client.close):
                with contextlib.suppress(Exception):
                    await closing()

    return await bounded(purge(), timeout)


def purge_orphans_before_start(bootstrap: str, partitions: dict[str, int],
                               deadline_seconds: float = 30.0) -> None:
    """:func:`purge_orphans` before faust starts (its own event loop), retried while the
    broker does not answer; given up with a warning at the deadline."""
    loop = asyncio.new_event_loop()
    deadline = time.monotonic() + deadline_seconds
    try:
        while True:
            try:
                purged = loop.run_until_complete(purge_orphans(bootstrap, partitions))
            except Exception as exc:
                if time.monotonic() >= deadline:
                    log.warning("could not check the broker for records of topics it does "
                                "not have (%s: %s); table recovery may wait for them",
                                type(exc).__name__, exc)
                    return
                loop.run_until_complete(asyncio.sleep(1.0))
                continue
            if purged:
                log.warning("the broker held records of %d topics it does not have, written "
                            "before the loss was noticed; removed them: %s", len(purged),
                            ", ".join(purged))
            return
    finally:
        loop.close()


def our_partitions(worker: Worker) -> dict[str, int]:
    """Every topic this worker declares, changelogs and the epoch topic included: name ->
    partitions."""
    settings, app = worker.settings, worker.app
    topics = {topic.get_topic_name(): topic.partitions or settings.topic_partitions
              for topic in worker.topics.all()}
    topics[settings.topic_name(EPOCH_TOPIC)] = 1
    for table in app.tables.values():
        topics[table.changelog_topic_name] = table.partitions or settings.topic_partitions
    return topics


def start_again(lost: frozenset[str], cause: str = "") -> None:
    """Replace this process with a new life of the same worker command."""
    log.error("the broker lost %d of our topics (%s...; %s): its offsets, changelogs and "
              "the events in flight are gone; starting this worker again", len(lost),
              ", ".join(sorted(lost)[:3]), cause or "missing")
    env = {**os.environ, LOST_AT_ENV: repr(time.time())}
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def register(worker: Worker) -> None:
    settings = worker.settings
    lost_at = lost_at_from(os.environ)
    os.environ.pop(LOST_AT_ENV, None)  # one re-drive per loss, not one per later restart
    epoch_topic = settings.topic_name(EPOCH_TOPIC)
    if lost_at is not None:  # before faust creates the topics again
        bootstrap, partitions = settings.kafka_bootstrap, our_partitions(worker)
        purge_orphans_before_start(bootstrap, partitions)
        # A new epoch at once: the other workers notice the loss from it even once the
        # topics exist again. Their previous lives write to the vanished topics until
        # they do, so wait for them, then remove those records too.
        loop = asyncio.new_event_loop()
        try:
            epoch = loop.run_until_complete(establish_epoch(bootstrap, epoch_topic))
        finally:
            loop.close()
        settle = settle_seconds(settings.broker_watch_seconds)
        log.warning("the broker's epoch is now %s; waiting %.0fs for the other workers to "
                    "notice it", epoch, settle)
        time.sleep(settle)
        purge_orphans_before_start(bootstrap, partitions)
    if settings.broker_watch_seconds <= 0:
        return
    watch = BrokerLossWatch(frozenset(settings.topic_name(spec.name)
                                      for spec in TOPIC_SPECS.values()) | {epoch_topic})

    @worker.app.service
    class BrokerWatch(Service):
        """Lists the broker's topics; re-drives what a lost broker stranded."""

        async def on_started(self) -> None:
            # Declared (SharedResources did it; maybe_declare runs once): from now on a
            # broker without them lost them, even if it crashes before the first listing.
            for topic in worker.topics.all():
                await topic.maybe_declare()
            watch.declared(await establish_epoch(settings.kafka_bootstrap, epoch_topic))
            log.info("broker epoch %s", watch.epoch)
            worker.resources.before_paying = self._epoch_current
            if lost_at is not None:
                self.add_future(self._redrive_stranded(lost_at))

        @Service.task
        async def _watch(self) -> None:
            while not self.should_stop:
                await self.sleep(settings.broker_watch_seconds)
                present = await list_topics(settings.kafka_bootstrap)
                epoch = None
                if present is not None and epoch_topic in present:
                    epoch = await read_epoch(settings.kafka_bootstrap, epoch_topic)
                    if watch.epoch is None and epoch == "":  # not written yet: write it
                        watch.remember(await establish_epoch(settings.kafka_bootstrap,
                                                             epoch_topic))
                lost = watch.observe(present, epoch)
                if lost:
                    start_again(lost, watch.cause)

        async def _epoch_current(self) -> None:
            """Before a paid model call: a worker that has not noticed yet that the broker
            was lost (paused, or between two watches) would pay against its stale budget
            while another worker's new life rebuilt the day without it. Measured with two
            workers, the second paused across the loss: billed $0.15 and $0.18 against a
            $0.12 cap in 2 of 5 runs. So the epoch is read first; superseded: this worker
            starts again now. Unreadable: the call goes ahead (nobody can rebuild the
            budget on a broker nobody reaches)."""
            if watch.epoch is None:
                return
            epoch = await read_epoch(settings.kafka_bootstrap, epoch_topic, timeout=4.0)
            if watch.superseded(epoch):
                start_again(watch.expected, watch.cause)

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
