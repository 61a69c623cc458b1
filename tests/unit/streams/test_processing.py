"""The stage loop: decode, retry, dead-letter (pure logic; the topic is a recording fake)."""

import json

import pytest

import schemas
from imaging.errors import PermanentError, ServiceUnavailable
from streams.processing import Message, RetryPolicy, Stage, decode_event
from streams.records import DeadLetter, ImageUploaded, deterministic_id
from tests.unit.streams.test_contracts import _uploaded


class RecordingTopic:
    """Stands in for a faust topic: keeps what was sent."""

    def __init__(self):
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key, value):
        self.sent.append((key, value))

        async def acked():
            return None

        import asyncio

        return asyncio.ensure_future(acked())


def _message(value: bytes, offset: int = 7) -> Message:
    return Message(topic="images.uploaded", partition=1, offset=offset, key=b"k", value=value)


FAST = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)


async def test_good_event_is_handled_once():
    seen = []

    async def handle(event):
        seen.append(event)

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    event = _uploaded()
    assert await stage.process(_message(event.to_json())) == "ok"
    assert seen == [event] and topic.sent == []


@pytest.mark.parametrize("value,error_class", [
    (b"\xff\xfe not json", "SchemaViolation"),
    (b'{"event_type": "ImageUploaded"}', "SchemaViolation"),
    (b"[1, 2, 3]", "SchemaViolation"),
])
async def test_poison_goes_to_dead_letters_with_reason(value, error_class):
    async def handle(event):
        raise AssertionError("must not be called")

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    assert await stage.process(_message(value)) == "dead_lettered"
    [(_key, sent)] = topic.sent
    letter = json.loads(sent)
    schemas.validate_event("dead_letter", letter)
    assert letter["stage"] == "test" and letter["error_class"] == error_class
    assert letter["source_offset"] == 7 and letter["error_message"]
    assert letter["original_event"] == value.decode("utf-8", "replace")


async def test_transient_errors_are_retried_then_succeed():
    calls = []

    async def handle(event):
        calls.append(1)
        if len(calls) < 3:
            raise ServiceUnavailable("db down")

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    assert await stage.process(_message(_uploaded().to_json())) == "ok"
    assert len(calls) == 3 and topic.sent == []


async def test_retries_exhausted_and_permanent_errors_dead_letter():
    async def always_down(event):
        raise ServiceUnavailable("still down")

    async def broken(event):
        raise PermanentError("corrupt image")

    async def bug(event):
        raise KeyError("oops")

    for handle, error_class, attempts in [(always_down, "ServiceUnavailable", 3),
                                          (broken, "PermanentError", 1), (bug, "KeyError", 1)]:
        topic = RecordingTopic()
        stage = Stage("test", ImageUploaded, handle, topic, FAST)
        event = _uploaded()
        assert await stage.process(_message(event.to_json())) == "dead_lettered"
        letter = DeadLetter.from_document(json.loads(topic.sent[0][1]))
        assert (letter.error_class, letter.attempts) == (error_class, attempts)
        assert letter.image_id == event.image_id
        assert topic.sent[0][0] == event.image_id.encode()


async def test_dead_letter_ids_are_stable_across_redelivery():
    async def broken(event):
        raise PermanentError("x")

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, broken, topic, FAST)
    await stage.process(_message(b"junk", offset=9))
    await stage.process(_message(b"junk", offset=9))
    ids = {json.loads(v)["event_id"] for _, v in topic.sent}
    assert ids == {deterministic_id("dead-letter", "test", "images.uploaded", "1", "9")}


def test_decode_event_round_trip():
    event = _uploaded()
    assert decode_event(ImageUploaded, event.to_json()) == event


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(initial_backoff=1, max_backoff=8)
    assert 0.5 <= policy.delay(1) <= 1
    assert 4 <= policy.delay(4) <= 8
    assert 4 <= policy.delay(20) <= 8


async def test_failure_hook_runs_before_dead_letter_and_only_for_decoded_events():
    calls = []

    async def broken(event):
        raise PermanentError("object missing")

    async def hook(event, exc):
        calls.append((event.image_id, str(exc)))

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, broken, topic, FAST, on_failure=hook)
    event = _uploaded()
    assert await stage.process(_message(event.to_json())) == "dead_lettered"
    assert calls == [(event.image_id, "object missing")] and len(topic.sent) == 1
    assert await stage.process(_message(b"not json", offset=8)) == "dead_lettered"
    assert len(calls) == 1 and len(topic.sent) == 2


async def test_a_null_value_is_dead_lettered_with_the_reason():
    async def handle(event):
        raise AssertionError("must not be called")

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    assert await stage.process(_message(b"")) == "dead_lettered"
    letter = json.loads(topic.sent[0][1])
    assert "no value (null)" in letter["error_message"] and letter["original_event"] == ""


async def test_an_oversize_message_gets_a_bounded_letter():
    async def handle(event):
        raise AssertionError("must not be called")

    topic = RecordingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    raw = b"x" * 600_000
    assert await stage.process(_message(raw)) == "dead_lettered"
    [(_key, sent)] = topic.sent
    assert len(sent) < 80_000
    letter = json.loads(sent)
    assert letter["original_event"].endswith("[truncated: 600000 bytes in all]")
    assert letter["source_offset"] == 7


class RefusingTopic(RecordingTopic):
    """A broker that refuses the letter itself (too large): retrying cannot help."""

    async def send(self, key, value):
        from aiokafka.errors import MessageSizeTooLargeError

        self.sent.append((key, value))
        raise MessageSizeTooLargeError("too large")


async def test_a_letter_the_broker_refuses_is_counted_not_retried_forever():
    async def handle(event):
        raise PermanentError("bad")

    topic = RefusingTopic()
    stage = Stage("test", ImageUploaded, handle, topic, FAST)
    assert await stage.process(_message(_uploaded().to_json())) == "dead_lettered"
    assert len(topic.sent) == 1


class FlakyBroker(RecordingTopic):
    """A broker that refuses the first ``refusals`` sends with ``error``, then takes them."""

    def __init__(self, error, refusals: int = 1):
        super().__init__()
        self.error, self.refusals = error, refusals

    async def send(self, key, value):
        if self.refusals:
            self.refusals -= 1
            raise self.error
        return await super().send(key, value)


async def test_a_broker_refusing_an_event_is_waited_out_not_dead_lettered():
    # Measured on tansu restarted empty: the first produce requests to the recreated topics
    # failed with UnknownError (-1); the stages dead-lettered those photos as failed.
    from aiokafka.errors import KafkaTimeoutError, UnknownError

    from streams.processing import emit

    for error in (UnknownError(), KafkaTimeoutError()):
        out, letters = FlakyBroker(error), RecordingTopic()

        async def handle(event, out=out):
            await emit(out, event, event.image_id)

        stage = Stage("test", ImageUploaded, handle, letters, FAST)
        assert await stage.process(_message(_uploaded().to_json())) == "ok"
        assert letters.sent == [] and len(out.sent) == 1


async def test_an_event_too_large_for_the_broker_is_not_retried():
    from aiokafka.errors import MessageSizeTooLargeError

    from streams.processing import emit

    with pytest.raises(MessageSizeTooLargeError):
        await emit(FlakyBroker(MessageSizeTooLargeError()), _uploaded(), "k")
