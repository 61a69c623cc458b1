"""How every agent consumes its stream: decode, validate, handle, retry, dead-letter.

An agent body is one line::

    await stage.run(stream)   # stage = Stage("assess", ImageUploaded, handler, letters)

For each message: the raw JSON is decoded and validated against the event's schema
(a violation is dead-lettered, never raised into faust); the handler runs; a
:class:`RetryableError` is retried with exponential backoff and jitter until it works
(an outage is waited out, never turned into a dead letter); anything else - a
:class:`PermanentError` or an unexpected bug - sends the original message to the
dead-letter topic with the stage, error class and message, and the agent moves on. The
offset is acknowledged only after the handler or the dead-letter write completed, so
effects are durable before the commit (at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from imaging.errors import RetryableError, SchemaViolation, ServiceUnavailable
from schemas import validate_event
from streams.metrics import (
    DEAD_LETTERS,
    EVENT_SECONDS,
    EVENTS_EMITTED,
    EVENTS_PROCESSED,
    RETRIES,
)
from streams.records import DeadLetter, Event, deterministic_id

log = logging.getLogger(__name__)

# A dead letter the broker refuses for what it is (not for being down) is never retried.
UNSENDABLE = (MessageSizeTooLargeError, RecordTooLargeError, SchemaViolation)

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient faults. ``max_attempts=None`` retries until it works: an
    outage of a dependency, however long, never turns a photo into a dead letter (the
    partition waits, health reports the dependency down)."""

    max_attempts: int | None = None
    initial_backoff: float = 0.2
    max_backoff: float = 30.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before attempt ``attempt + 1``."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


SINK_RETRY = RetryPolicy(max_attempts=None, initial_backoff=0.5, max_backoff=30.0)


@dataclass(frozen=True)
class Message:
    """The transport facts of one consumed message."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes


def decode_event(event_type: type[E], raw: bytes | None) -> E:
    """Parse and validate one message value; SchemaViolation says what is wrong."""
    if not raw:
        raise SchemaViolation(f"{event_type.__name__}: the message has no value (null)")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaViolation(f"{event_type.__name__}: value is not JSON: {exc}") from None
    validate_event(event_type.schema_name, document)
    return event_type.from_document(document)


async def emit(topic: faust.TopicT, event: Event, key: str, *, validate: bool = True) -> None:
    """Send an event and wait until the broker acknowledged it. A broker that did not take
    it is a transient fault (ServiceUnavailable): the handler is retried, never
    dead-lettered for it, unless the broker refused the event for what it is (too large)."""
    if validate:
        validate_event(event.schema_name, event.to_document())
    try:
        future = await topic.send(key=key.encode(), value=event.to_json())
        await future
    except KafkaError as exc:
        raise send_failure(exc) from exc
    EVENTS_EMITTED.labels(event.event_type).inc()


def send_failure(exc: KafkaError) -> Exception:
    """What a broker's refusal to take an event means for the stage that sent it.

    Only a record too large for the broker can never be sent. Everything else is the
    broker being down, restarting or creating the topic again: measured after a restart
    on memory storage, tansu answered the first produce requests to the recreated topics
    with UnknownError (-1), and those photos were dead-lettered and marked failed."""
    if isinstance(exc, (MessageSizeTooLargeError, RecordTooLargeError)):
        return exc
    return ServiceUnavailable(f"the broker did not take the event: {type(exc).__name__}: {exc}")


class Stage(Generic[E]):
    """One agent's processing loop with dead-lettering and retries."""

    def __init__(
        self,
        name: str,
        event_type: type[E],
        handle: Callable[[E], Awaitable[None]],
        dead_letters: faust.TopicT,
        retry: RetryPolicy = RetryPolicy(),
        on_failure: Callable[[E, Exception], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.event_type = event_type
        self.handle = handle
        self.dead_letters = dead_letters
        self.retry = retry
        # Runs before a decoded event is dead-lettered (e.g. release its budget).
        self.on_failure = on_failure

    async def run(self, stream: faust.StreamT) -> None:
        """Consume ``stream`` forever; one bad message never stops the loop."""
        async for event in stream.events():
            # Topics use the raw serializer (streams.topics): key and value are bytes.
            await self.process(Message(
                topic=event.message.topic,
                partition=event.message.partition,
                offset=event.message.offset,
                key=event.key if isinstance(event.key, bytes) else None,
                value=event.value if isinstance(event.value, bytes) else b"",
            ))

    async def process(self, message: Message) -> str:
        """Handle one message; returns the outcome ("ok" or "dead_lettered")."""
        started = time.perf_counter()
        attempts = 0
        record: E | None = None
        try:
            record = decode_event(self.event_type, message.value)
            while True:
                attempts += 1
                try:
                    await self.handle(record)
                    break
                except RetryableError as exc:
                    if self.retry.max_attempts is not None and attempts >= self.retry.max_attempts:
                        raise
                    RETRIES.labels(self.name, type(exc).__name__).inc()
                    delay = self.retry.delay(attempts)
                    log.warning("%s: %s (attempt %d), retrying in %.2fs",
                                self.name, exc, attempts, delay)
                    await asyncio.sleep(delay)
            outcome = "ok"
        except Exception as exc:  # every failure of one message is contained here
            if record is not None and self.on_failure is not None:
                try:
                    await self.on_failure(record, exc)
                except Exception:
                    log.exception("%s: failure hook failed", self.name)
            await self._dead_letter(message, exc, max(attempts, 1))
            outcome = "dead_lettered"
        EVENTS_PROCESSED.labels(self.name, outcome).inc()
        EVENT_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        return outcome

    async def _dead_letter(self, message: Message, exc: Exception, attempts: int) -> None:
        error_class = type(exc).__name__
        log.error("%s: dead-lettering %s[%s]@%s: %s: %s", self.name, message.topic,
                  message.partition, message.offset, error_class, exc)
        letter = DeadLetter.new(
            event_id=deterministic_id(
                "dead-letter", self.name, message.topic, str(message.partition),
                str(message.offset),
            ),
            stage=self.name,
            error_class=error_class,
            error_message=str(exc)[:4000] or error_class,
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            source_key=message.key.decode("utf-8", "replace") if message.key else None,
            image_id=_image_id_of(message.value),
            attempts=attempts,
            original_event=excerpt(message.value),
        )
        key = letter.image_id or letter.event_id
        delay = 0.5
        while True:  # the broker being down is the only thing that stops us here
            try:
                await emit(self.dead_letters, letter, key)
                break
            except UNSENDABLE as send_exc:  # retrying could never help: log and count
                log.error("%s: dead letter for %s[%s]@%s cannot be sent (%s); the original "
                          "stays on its topic", self.name, message.topic, message.partition,
                          message.offset, send_exc)
                DEAD_LETTERS.labels(self.name, "unsendable").inc()
                return
            except Exception as send_exc:
                log.warning("%s: dead-letter send failed (%s), retrying", self.name, send_exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        DEAD_LETTERS.labels(self.name, error_class).inc()


def excerpt(raw: bytes, limit: int = 64 * 1024) -> str:
    """The original message for a dead letter, bounded: a letter must always fit the
    broker's message size (the original stays on its topic at the letter's coordinates)."""
    if len(raw) <= limit:
        return raw.decode("utf-8", "replace")
    return (raw[:limit].decode("utf-8", "replace")
            + f"...[truncated: {len(raw)} bytes in all]")


def _image_id_of(raw: bytes) -> str | None:
    """Best-effort image id of a message that may be garbage."""
    if len(raw) > 1024 * 1024:
        return None
    try:
        document: Any = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    image_id = document.get("image_id") if isinstance(document, dict) else None
    if isinstance(image_id, str) and len(image_id) == 32 and all(
        c in "0123456789abcdef" for c in image_id
    ):
        return image_id
    return None
