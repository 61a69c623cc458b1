"""Prometheus metrics of a worker, exposed on ``/metrics`` of its web port."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

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
EVENTS_EMITTED = Counter(
    "imgstream_events_emitted_total",
    "Events produced, by event type.",
    ["event_type"],
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


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
