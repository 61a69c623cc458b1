"""The validation memo: bytes validated once are trusted, anything else is still checked."""

import pytest

from streams import processing
from streams.errors import SchemaViolation
from streams.processing import decode_event, emit
from streams.records import ImageUploaded
from streams.validation_memo import ValidationMemo
from tests.unit.streams.test_contracts import _uploaded
from tests.unit.streams.test_processing import RecordingTopic


def test_remembers_exact_bytes_per_schema():
    memo = ValidationMemo(capacity=8)
    memo.remember("image_uploaded", b'{"a":1}')
    assert memo.known_valid("image_uploaded", b'{"a":1}')
    assert not memo.known_valid("image_uploaded", b'{"a": 1}')
    assert not memo.known_valid("quality_assessed", b'{"a":1}')


def test_bounded_least_recently_used_goes_first():
    memo = ValidationMemo(capacity=2)
    memo.remember("s", b"1")
    memo.remember("s", b"2")
    assert memo.known_valid("s", b"1")  # 1 is now the most recent
    memo.remember("s", b"3")
    assert len(memo) == 2
    assert memo.known_valid("s", b"1") and memo.known_valid("s", b"3")
    assert not memo.known_valid("s", b"2")


def test_capacity_zero_remembers_nothing():
    memo = ValidationMemo(capacity=0)
    memo.remember("s", b"1")
    assert not memo.known_valid("s", b"1") and len(memo) == 0


@pytest.fixture
def counted_validation(monkeypatch):
    calls = []
    real = processing.validate_event

    def counting(name, document):
        calls.append(name)
        real(name, document)

    monkeypatch.setattr(processing, "VALIDATED", ValidationMemo(16))
    monkeypatch.setattr(processing, "validate_event", counting)
    return calls


async def test_what_this_process_emitted_is_not_validated_again(counted_validation):
    topic = RecordingTopic()
    event = _uploaded()
    await emit(topic, event, event.image_id)
    [(_key, value)] = topic.sent
    assert decode_event(ImageUploaded, value) == event
    assert decode_event(ImageUploaded, value) == event
    assert counted_validation == ["image_uploaded"]


def test_outside_violations_are_checked_every_time(counted_validation):
    bad = _uploaded().to_json().replace(b'"width":', b'"width_":')
    for _ in range(2):
        with pytest.raises(SchemaViolation):
            decode_event(ImageUploaded, bad)
    assert counted_validation == ["image_uploaded", "image_uploaded"]


async def test_emit_without_validation_does_not_vouch_for_its_bytes(counted_validation):
    topic = RecordingTopic()
    event = _uploaded()
    await emit(topic, event, event.image_id, validate=False)
    decode_event(ImageUploaded, topic.sent[0][1])
    assert counted_validation == ["image_uploaded"]
