"""Message keys come from each topic's declaration, not from each call site."""

import pytest

from streams.records import DeadLetter, deterministic_id
from streams.topics import TOPIC_SPECS, key_of
from tests.unit.streams.test_contracts import _uploaded


def test_keys_are_the_declared_field():
    event = _uploaded(image_id="b" * 32)
    assert key_of(TOPIC_SPECS["uploaded"], event) == "b" * 32


def test_the_budget_topics_are_keyed_by_budget_day():
    assert {short for short, spec in TOPIC_SPECS.items() if spec.key == "budget_key"} == {
        "ai_requests", "ai_budget", "ai_caps"}


def test_an_event_on_the_wrong_topic_is_refused():
    with pytest.raises(TypeError, match=r"images\.assessed carries QualityAssessed"):
        key_of(TOPIC_SPECS["assessed"], _uploaded())


def test_a_dead_letter_without_a_photo_is_keyed_by_its_id():
    letter = DeadLetter.new(
        event_id=deterministic_id("x"), stage="s", error_class="E", error_message="m",
        source_topic="t", source_partition=None, source_offset=None, source_key=None,
        image_id=None, attempts=1, original_event="")
    assert key_of(TOPIC_SPECS["dead_letter"], letter) == letter.event_id
