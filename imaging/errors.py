"""The project's exception hierarchy, importable by pure code (no app, no I/O).

Every stage decides what to do with a failure by its class alone:

* :class:`RetryableError` - a transient fault (broker, database or store unreachable,
  throttling). Retried with backoff; never dead-lettered for being transient.
* :class:`PermanentError` - the input itself is bad (corrupt image, schema violation,
  missing object). Retrying cannot help: the event goes to the dead-letter topic.
* :class:`BudgetError` - the daily AI budget cannot cover the work; callers fall back
  to the local path.
* :class:`ConfigurationError` - the process cannot start as configured.

Library exceptions are mapped into these at one boundary per SDK (``services/``); HTTP
status codes are chosen at the HTTP boundary (``streams/ingest.py``), not here.
:class:`StepDeclined` is not a failure: an operation chose to leave the image alone.
"""

from __future__ import annotations


class ImgstreamError(Exception):
    """Base class of every error the project raises on purpose."""


class RetryableError(ImgstreamError):
    """A transient fault: the same work may succeed later."""


class PermanentError(ImgstreamError):
    """The input cannot be processed, now or later."""


class BudgetError(ImgstreamError):
    """The AI budget for the day cannot cover the requested work."""


class ConfigurationError(ImgstreamError):
    """Settings, profiles or catalogs are invalid; raised at start-up."""


class ServiceUnavailable(RetryableError):
    """An outside service (database, store, broker, model) cannot be reached."""


class SchemaViolation(PermanentError):
    """An event does not match its JSON Schema."""


class ForgedEvent(PermanentError):
    """An event names something it may not: another bucket, an image id that does not
    match its seller, SKU and content, an approval without a reservation."""


class ObjectMissing(PermanentError):
    """An object an event points to is not in the store."""


class RejectedUpload(PermanentError):
    """An upload failed validation; ``reason`` is written for the seller, ``code`` is a
    stable machine-readable identifier (the HTTP API picks its status from it)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StepDeclined(Exception):
    """An operation chose to leave the image alone (e.g. a product mask it cannot trust).

    ``code`` is a stable reason code, ``detail`` the reason in words with what was measured.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
