"""Every topic of the design, declared once: name, event, key, partitions, retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import faust

from streams.records import (
    AIEnhancementApproved,
    AIEnhancementRequested,
    AISpendSettled,
    BudgetCapChanged,
    DeadLetter,
    EnhancementPlan,
    Event,
    ImageCompleted,
    ImageEnhanced,
    ImageUploaded,
    QualityAssessed,
    ReplayRequested,
)
from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    event: type[Event]
    key: str
    retention: timedelta | None
    description: str
    partitions: int | None = None  # None: settings.topic_partitions


TOPIC_SPECS: dict[str, TopicSpec] = {
    "uploaded": TopicSpec(
        "images.uploaded", ImageUploaded, "image_id", None,
        "Validated uploads; kept forever because replays of the catalog start here.",
    ),
    "replay": TopicSpec(
        "images.replay", ReplayRequested, "image_id", timedelta(days=7),
        "Uploads to assess again under another profile (imgstream replay).",
    ),
    "assessed": TopicSpec(
        "images.assessed", QualityAssessed, "image_id", timedelta(days=30),
        "Public quality reports for downstream teams.",
    ),
    "enhance_local": TopicSpec(
        "images.enhance.local", EnhancementPlan, "image_id", timedelta(days=7),
        "Plans to run with local operations (including AI steps downgraded to fallbacks).",
    ),
    "ai_requests": TopicSpec(
        "images.ai.requests", AIEnhancementRequested, "budget_key", timedelta(days=7),
        "AI work asking for budget; keyed by budget day so one owner holds a day's spend.",
    ),
    "ai": TopicSpec(
        "images.ai", AIEnhancementApproved, "image_id", timedelta(days=7),
        "AI work with reserved budget, for enhance_ai.",
    ),
    "ai_budget": TopicSpec(
        "images.ai.budget", AISpendSettled, "budget_key", timedelta(days=7),
        "Settlements of approved AI work, back to the owner of the budget day.",
    ),
    "ai_caps": TopicSpec(
        "images.ai.caps", BudgetCapChanged, "budget_key", timedelta(days=7),
        "Operators' changes to a budget day's caps, to the owner of the budget day.",
    ),
    "enhanced": TopicSpec(
        "images.enhanced", ImageEnhanced, "image_id", timedelta(days=7),
        "Enhanced intermediates waiting for finalize.",
    ),
    "completed": TopicSpec(
        "images.completed", ImageCompleted, "image_id", timedelta(days=30),
        "Final results with before/after metrics, costs and URLs.",
    ),
    "dead_letter": TopicSpec(
        "images.dead-letter", DeadLetter, "image_id", timedelta(days=30),
        "Events a stage could not process, with the reason and the original event.",
    ),
}


class Topics:
    """The app's faust topics by short name (``topics.uploaded``, ``topics.dead_letter``...).

    Values and keys are raw bytes: events are plain JSON that ``streams.processing``
    decodes and validates itself, so a malformed message reaches the dead-letter topic
    instead of crashing the agent in faust's deserializer.
    """

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.specs = TOPIC_SPECS
        self._topics: dict[str, faust.TopicT] = {}
        for short, spec in TOPIC_SPECS.items():
            self._topics[short] = app.topic(
                settings.topic_name(spec.name),
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=spec.partitions or settings.topic_partitions,
                retention=spec.retention,
                internal=True,
                config={"retention.ms": "-1"} if spec.retention is None else None,
            )

    def __getattr__(self, short: str) -> faust.TopicT:
        try:
            return self._topics[short]
        except KeyError:
            raise AttributeError(short) from None

    def all(self) -> list[faust.TopicT]:
        return list(self._topics.values())

    async def send(self, short: str, event: Event, *, validate: bool = True) -> None:
        """Send ``event`` to topic ``short``, keyed by the field its spec names (events
        without that field, e.g. a dead letter about garbage, by their event id)."""
        from streams.processing import emit

        await emit(self._topics[short], event, key_of(self.specs[short], event),
                   validate=validate)


def key_of(spec: TopicSpec, event: Event) -> str:
    """The message key of ``event`` on the topic ``spec`` declares."""
    if not isinstance(event, spec.event):
        raise TypeError(f"{spec.name} carries {spec.event.__name__}, "
                        f"not {type(event).__name__}")
    return getattr(event, spec.key, None) or event.event_id
