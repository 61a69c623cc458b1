"""Prometheus metrics of a worker, exposed on ``/metrics`` of its web port."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

EVENTS_PROCESSED = Counter(
    "imgstream_events_processed_total",
    "Events an agent finished, by outcome (ok, dead_lettered).",
    ["stage", "outcome"],
)
EVENT_SECONDS = Histogram(
    "imgstream_event_processing_seconds",
    "Time an agent spent on one event, retries included.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter(
    "imgstream_event_retries_total",
    "Retries after a transient fault, by stage and error class.",
    ["stage", "error_class"],
)
DEAD_LETTERS = Counter(
    "imgstream_dead_letters_total",
    "Events sent to the dead-letter topic, by stage and error class.",
    ["stage", "error_class"],
)
OBJECT_REQUESTS = Counter(
    "imgstream_object_requests_total",
    "Requests this worker made to the object store (cache hits are not requests).",
    ["operation"],
)
EVENTS_EMITTED = Counter(
    "imgstream_events_emitted_total",
    "Events produced, by event type.",
    ["event_type"],
)
STRANDED_REDRIVEN = Counter(
    "imgstream_stranded_redriven_total",
    "Unfinished photos driven through the pipeline again because their events were lost.",
)
UPLOADS = Counter(
    "imgstream_uploads_total",
    "Upload requests, by outcome (created, duplicate, rejected, error) and reason code.",
    ["outcome", "code"],
)
UPLOAD_SECONDS = Histogram(
    "imgstream_upload_seconds",
    "Time to validate, store, record and emit one upload.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

BEDROCK_CALLS = Counter(
    "imgstream_bedrock_calls_total",
    "Model invocations, by model and outcome (paid, cache_hit, or the failure kind).",
    ["model", "outcome"],
)
BEDROCK_RETRIES = Counter(
    "imgstream_bedrock_retries_total",
    "InvokeModel attempts retried after a retryable error, by model and error code.",
    ["model", "error"],
)
BEDROCK_CALL_SECONDS = Histogram(
    "imgstream_bedrock_call_seconds",
    "Time of one InvokeModel HTTP attempt, by model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
AI_CACHE = Counter(
    "imgstream_ai_cache_total",
    "AI result cache lookups and writes (hit, recovered, miss, stored, store_failed).",
    ["outcome"],
)

BUDGET_DECISIONS = Counter(
    "imgstream_budget_decisions_total",
    "Budget gate decisions: reserved, already_reserved, already_finished, does_not_fit,"
    " settled, released, duplicate_settlement, caps_changed, settled_from_record (an open"
    " reservation settled again from ai_usage_logs: should stay 0).",
    ["decision"],
)
BUDGET_EXCESS = Counter(
    "imgstream_budget_excess_usd_total",
    "Spend settled above its reservation (should stay 0: prices changed mid-flight).",
)
BUDGET_USD = Gauge(
    "imgstream_ai_budget_usd",
    "Today's AI budget as this worker's table copy sees it, by kind (cap, reserved,"
    " settled, remaining).",
    ["kind"],
)
AI_PAID_NOT_PUBLISHED = Counter(
    "imgstream_ai_paid_not_published_usd_total",
    "USD paid for AI results that finalize did not publish (gate or no-improvement).",
)
AI_STEPS = Counter(
    "imgstream_ai_steps_total",
    "AI steps run by enhance_ai, by operation and outcome (ai, cache_hit, fallback).",
    ["operation", "outcome"],
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
INVALIDATIONS = Counter(
    "imgstream_cdn_invalidations_total",
    "CreateInvalidation outcomes: ok, duplicate (reference already confirmed, not sent), "
    "already_done (the result was invalidated before, by an earlier life of a worker), "
    "busy (TooManyInvalidationsInProgress, retried), retried (other transient fault), "
    "failed (refused for good, events dead-lettered).",
    ["outcome"],
)
PATHS_INVALIDATED = Counter(
    "imgstream_cdn_paths_invalidated_total",
    "Paths in invalidations CloudFront accepted (each one is billed after 1000 a month).",
)
PENDING_PATHS = Gauge(
    "imgstream_cdn_pending_paths",
    "Deduplicated paths waiting for their batch to be sent.",
)

FAUST_HEALS = Counter(
    "imgstream_faust_heals_total",
    "Times a faust patch (streams/faust_fixes.py) kept an unprocessed event from being "
    "committed or lost, by rule.",
    ["rule"],
)

CONSUMER_LAG = Gauge(
    "imgstream_consumer_lag",
    "Events waiting on this worker's partitions of a topic (high-water minus committed).",
    ["topic"],
)
