"""The Kafka side of a replay: reading images.uploaded in chunks, sending ReplayRequested."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from imaging.errors import PermanentError, ServiceUnavailable
from streams.records import ReplayRequested
from streams.replay.options import PartitionRange, first_offset_at
from streams.settings import Settings
from streams.topics import TOPIC_SPECS

STALL_SECONDS = 30.0      # no message from a partition still owed for this long: give up


@dataclass
class Chunk:
    """Messages read together, and the offsets to commit once they are handled."""

    messages: list[Message]
    finished: dict[int, int] = field(default_factory=dict)  # partition -> its range's end


class UploadLog:
    """images.uploaded through a confluent consumer that commits to the replay's group.

    Partitions are assigned, not subscribed: no group join (seconds on the embedded
    broker), and committed offsets still belong to the group.
    """

    def __init__(self, settings: Settings, group: str) -> None:
        self.topic = settings.topic_name(TOPIC_SPECS["uploaded"].name)
        self.bootstrap = settings.kafka_bootstrap
        self.group = group
        self._consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "session.timeout.ms": 6000,
            "logger": _quiet_logger,
        })
        self._closed = False

    def partitions(self) -> list[int]:
        try:
            metadata = self._consumer.list_topics(timeout=5)
        except KafkaException as exc:
            raise ServiceUnavailable(f"broker {self.bootstrap} unreachable: "
                                     f"{_kafka_reason(exc)}") from None
        topic = metadata.topics.get(self.topic)
        if topic is None or not topic.partitions:
            raise PermanentError(f"topic {self.topic} does not exist on {self.bootstrap}: "
                                 "no worker has started there yet, nothing to replay")
        return sorted(topic.partitions)

    def watermarks(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        return {p: self._call(self._consumer.get_watermark_offsets,
                              TopicPartition(self.topic, p), timeout=10)
                for p in partitions}

    def committed(self, partitions: Iterable[int]) -> dict[int, int]:
        answer = self._call(self._consumer.committed,
                            [TopicPartition(self.topic, p) for p in partitions], timeout=10)
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}

    def offsets_at(self, timestamp_ms: int, watermarks: Mapping[int, tuple[int, int]]
                   ) -> dict[int, int]:
        return {p: first_offset_at(timestamp_ms, low, high,
                                   lambda offset, p=p: self._timestamp_at(p, offset))
                for p, (low, high) in watermarks.items()}

    def _timestamp_at(self, partition: int, offset: int) -> int:
        self._consumer.assign([TopicPartition(self.topic, partition, offset)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in self._consumer.consume(1, timeout=1.0):
                if message.error() is None:
                    return message.timestamp()[1]
        raise ServiceUnavailable(f"{self.topic}[{partition}] offset {offset} not readable")

    def read(self, ranges: Sequence[PartitionRange], batch_size: int) -> Iterator[Chunk]:
        """Chunks of the ranges' messages until every range is read (then no more)."""
        owed = {r.partition: r.end for r in ranges if r.size > 0}
        self._consumer.assign([TopicPartition(self.topic, r.partition, r.start)
                               for r in ranges if r.size > 0])
        heard_at = time.monotonic()
        while owed:
            chunk = Chunk([])
            for message in self._call(self._consumer.consume, num_messages=batch_size,
                                      timeout=1.0):
                partition = message.partition()
                end = owed.get(partition)
                if end is None:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise ServiceUnavailable(f"reading {self.topic}: {error.str()}")
                if error is None and message.offset() < end:
                    chunk.messages.append(message)
                    if message.offset() + 1 < end:
                        continue
                # The end of the range, or of the partition (EOF): nothing more is owed.
                chunk.finished[partition] = end
                del owed[partition]
                self._consumer.pause([TopicPartition(self.topic, partition)])
            if chunk.messages or chunk.finished:
                heard_at = time.monotonic()
                yield chunk
            elif time.monotonic() - heard_at > STALL_SECONDS:
                raise ServiceUnavailable(f"no message from {self.topic} partitions "
                                         f"{sorted(owed)} for {STALL_SECONDS:.0f}s")

    def commit(self, positions: Mapping[int, int]) -> None:
        if positions:
            self._call(self._consumer.commit, offsets=[
                TopicPartition(self.topic, p, o) for p, o in positions.items()],
                asynchronous=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def forget_progress(self) -> None:
        """Delete the group's committed offsets (the range is done; nothing to resume)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet_logger})
        for future in admin.delete_consumer_groups([self.group], request_timeout=10).values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                    raise ServiceUnavailable(f"deleting the offsets of group {self.group}: "
                                             f"{_kafka_reason(exc)}") from None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KafkaException as exc:
            raise ServiceUnavailable(f"{self.topic} on {self.bootstrap}: "
                                     f"{_kafka_reason(exc)}") from None


class RequestSender:
    """Produces ReplayRequested to images.replay; ``confirm`` waits for the broker's acks."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic_name(TOPIC_SPECS["replay"].name)
        config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap,
                                  "logger": _quiet_logger}
        if settings.producer_max_batch_size <= 1:
            # One record per batch, like the workers: tansu misreports the high
            # watermark after multi-record batches (reference/kafka-and-faust.md).
            config["batch.num.messages"] = 1
        self._producer = Producer(config)
        self._failures: list[str] = []

    def send(self, event: ReplayRequested) -> None:
        while True:
            try:
                self._producer.produce(self.topic, key=event.image_id.encode(),
                                       value=event.to_json(), on_delivery=self._delivered)
                return
            except BufferError:  # local queue full: let deliveries drain it
                self._producer.poll(0.5)

    def confirm(self, timeout: float = 60.0) -> None:
        unconfirmed = self._producer.flush(timeout)
        if unconfirmed:
            raise ServiceUnavailable(f"broker did not confirm {unconfirmed} replay requests "
                                     f"on {self.topic} within {timeout:.0f}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise ServiceUnavailable(f"{len(failures)} replay requests not delivered to "
                                     f"{self.topic}: {failures[0]}")

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(error.str())


def _kafka_reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


class _QuietLogger:
    """librdkafka logs connection retries on stderr; the CLI reports failures itself."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    def isEnabledFor(self, level: int) -> bool:
        return False


_quiet_logger = _QuietLogger()
