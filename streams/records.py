"""Event records: one class per event of the design, mirrored by ``schemas/events/v1``.

Events are plain JSON on the wire (no faust metadata) so that any consumer (kcat,
confluent-kafka, another language) can read them; the JSON Schema of each event is the
contract. Nested structures (metrics, steps, outputs) are dicts described by the schema.
Image bytes never travel in events: ``*_uri`` fields are ``s3://bucket/key`` URIs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust

SCHEMA_VERSION = "1.3"

E = TypeVar("E", bound="Event")

#: Catalogue labels (added in 1.2) are left out of a document when unset: the catalogue
#: id was its own event key, and the event stays what it was before labels existed.
LABEL_FIELDS = frozenset({"seller_label", "sku_label", "product_group_label"})


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, the format of every ``*_at`` field."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deterministic_id(*parts: str) -> str:
    """A 32-hex id derived from its parts: the same work always gets the same id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def image_id_for(seller_id: str, sku_id: str, content_sha256: str) -> str:
    """A listing photo is identified by who sells it, for which SKU, and its bytes."""
    return deterministic_id("image", seller_id, sku_id, content_sha256)


def job_id_for(image_id: str, profile_name: str, profile_version: str) -> str:
    """One job per (image, profile name, version): a redelivered or replayed report of
    the same photo under the same profile is the same job."""
    return deterministic_id("job", image_id, profile_name, profile_version)


class Event(faust.Record, abstract=True, include_metadata=False):
    """Fields every event carries."""

    #: File name (without .json) of the event's JSON Schema under schemas/events/v1.
    schema_name = ""

    event_id: str
    event_type: str
    schema_version: str
    occurred_at: str

    @classmethod
    def new(cls: type[E], *, event_id: str, **fields: Any) -> E:
        """Build an event, filling type, schema version and time."""
        return cls(
            event_id=event_id,
            event_type=cls.__name__,
            schema_version=SCHEMA_VERSION,
            occurred_at=fields.pop("occurred_at", None) or utc_now(),
            **fields,
        )

    @classmethod
    def from_document(cls: type[E], document: dict[str, Any]) -> E:
        """Build from a decoded (already schema-validated) document.

        Unknown fields are ignored: producers may add fields within a major version.
        """
        known = cls._options.fields
        return cls(**{k: v for k, v in document.items() if k in known})

    def to_document(self) -> dict[str, Any]:
        document = self.asdict()
        for name in LABEL_FIELDS & document.keys():
            if document[name] is None:
                del document[name]
        return document

    def to_json(self) -> bytes:
        return json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True).encode()


class ImageUploaded(Event):
    """A seller's photo passed ingest validation and is stored (images.uploaded)."""

    schema_name = "image_uploaded"

    image_id: str
    seller_id: str
    sku_id: str
    product_group_id: str | None
    filename: str | None
    original_uri: str
    content_sha256: str
    content_type: str
    format: str
    size_bytes: int
    width: int
    height: int
    orientation: int
    # The catalogue's ids when they differ from their keys (streams/identity.py).
    seller_label: str | None = None
    sku_label: str | None = None
    product_group_label: str | None = None


class ReplayRequested(Event):
    """An uploaded photo to assess again under a named profile (images.replay).

    ``imgstream replay`` sends these; the workers' ``assess_replay`` agent handles them
    apart from live uploads, and everything downstream carries the replay's profile.
    """

    schema_name = "replay_requested"

    replay_id: str
    image_id: str
    profile: dict[str, Any]
    uploaded: dict[str, Any]


class QualityAssessed(Event):
    """The public quality report of one photo under one profile (images.assessed)."""

    schema_name = "quality_assessed"

    image_id: str
    seller_id: str
    sku_id: str
    original_uri: str
    content_sha256: str
    profile: dict[str, Any]
    metrics: dict[str, Any]
    scores: dict[str, Any]
    overall_score: float
    tier: str
    issues: list[str]
    recommendations: list[dict[str, Any]]
    subject: dict[str, Any]
    assessment_ms: float
    seller_label: str | None = None
    sku_label: str | None = None


class EnhancementPlan(Event):
    """Ordered steps that should fix a photo (images.enhance.local when local)."""

    schema_name = "enhancement_plan"

    image_id: str
    job_id: str
    seller_id: str
    sku_id: str
    source_uri: str
    content_sha256: str
    profile: dict[str, Any]
    tier: str
    skip: bool
    steps: list[dict[str, Any]]
    estimated_cost_usd: float
    before: dict[str, Any]
    seller_label: str | None = None
    sku_label: str | None = None


class AIEnhancementRequested(Event):
    """A plan with AI steps asking the budget gate for money (images.ai.requests)."""

    schema_name = "ai_enhancement_requested"

    request_id: str
    image_id: str
    job_id: str
    budget_key: str
    budget_day: str
    estimated_cost_usd: float
    plan: dict[str, Any]


class AIEnhancementApproved(Event):
    """A request whose estimate is reserved in the day's budget (images.ai)."""

    schema_name = "ai_enhancement_approved"

    request_id: str
    reservation_id: str
    image_id: str
    job_id: str
    budget_key: str
    budget_day: str
    reserved_usd: float
    plan: dict[str, Any]


class AISpendSettled(Event):
    """What an approved request really cost, back to the day's owner (images.ai.budget).

    ``outcome`` is ``settled`` (some money spent, or none because of cache hits) or
    ``released`` (the work failed before any call). ``usage`` has one entry per AI step.
    """

    schema_name = "ai_spend_settled"

    request_id: str
    reservation_id: str
    image_id: str
    job_id: str
    budget_key: str
    budget_day: str
    reserved_usd: float
    settled_usd: float
    outcome: str
    usage: list[dict[str, Any]]


class ImageEnhanced(Event):
    """Steps have been applied; the intermediate result waits for finalize (images.enhanced)."""

    schema_name = "image_enhanced"

    image_id: str
    job_id: str
    source_uri: str
    enhanced_uri: str
    profile: dict[str, Any]
    steps: list[dict[str, Any]]
    total_cost_usd: float
    ai_used: bool
    plan: dict[str, Any]


class ImageCompleted(Event):
    """A photo's final, web-ready result with before/after metrics (images.completed)."""

    schema_name = "image_completed"

    image_id: str
    job_id: str
    seller_id: str
    sku_id: str
    status: str
    profile: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any] | None
    kept_original: bool
    kept_original_reason: str | None
    steps: list[dict[str, Any]]
    total_cost_usd: float
    ai_used: bool
    outputs: list[dict[str, Any]]
    cdn_url: str | None
    processing_ms: float
    gate: dict[str, Any] | None = None
    paid_not_published_usd: float = 0.0
    seller_label: str | None = None
    sku_label: str | None = None


class DeadLetter(Event):
    """An event a stage could not process, with why (images.dead-letter)."""

    schema_name = "dead_letter"

    stage: str
    error_class: str
    error_message: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    source_key: str | None
    image_id: str | None
    attempts: int
    original_event: str


class BudgetCapChanged(Event):
    """An operator set a budget day's caps at run time (images.ai.caps, key budget_key).

    The day's owner records them in its budget table: from the next request on they
    replace the settings' caps for that day (per operation: the ones named).
    """

    schema_name = "budget_cap_changed"

    budget_key: str
    budget_day: str
    daily_cap_usd: float
    operation_caps_usd: dict[str, float]
    reason: str
    requested_by: str


#: Every event class, for the contract tests and the schema registry.
ALL_EVENTS: tuple[type[Event], ...] = (
    ImageUploaded,
    ReplayRequested,
    QualityAssessed,
    EnhancementPlan,
    AIEnhancementRequested,
    AIEnhancementApproved,
    AISpendSettled,
    BudgetCapChanged,
    ImageEnhanced,
    ImageCompleted,
    DeadLetter,
)
