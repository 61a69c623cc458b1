"""InvokeModel request bodies, response parsing and error classification per model family (pure).

Why separate from the client: the body and answer shapes differ per family (Stability image
services, Amazon image tasks) and the retry decision follows AWS's error table
(shared/reference/aws-image-services.md); both are facts to test without a network.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from imaging.errors import PermanentError
from imaging.validation import sniff_format as sniff_image_format
from services.model_catalog import ModelEntry


class ModelCallFailed(PermanentError):
    """A model call that cannot give a result: the step falls back to its local op.

    ``reason`` starts with a stable word (content_filtered, retries_exhausted, rejected,
    model_not_found, model_not_callable, model_error, bad_response, not_reserved,
    unconfirmed_attempt) followed by details. ``charged_usd`` is what the failure must
    be accounted as (an earlier call that may have been billed), usually 0.
    """

    def __init__(self, reason: str, attempts: int = 0, charged_usd: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.charged_usd = charged_usd


class Retry(Enum):
    NEVER = "never"
    ONCE = "once"
    BACKOFF = "backoff"


_RETRY = {
    "ThrottlingException": Retry.BACKOFF,
    "ModelNotReadyException": Retry.BACKOFF,
    "ModelTimeoutException": Retry.BACKOFF,
    "InternalServerException": Retry.BACKOFF,
    "ServiceUnavailableException": Retry.BACKOFF,
    "ModelErrorException": Retry.ONCE,
    "ValidationException": Retry.NEVER,
    "AccessDeniedException": Retry.NEVER,
    "ResourceNotFoundException": Retry.NEVER,
    "ServiceQuotaExceededException": Retry.NEVER,
    # botocore's names for a connection that failed or an answer that did not come in time
    "EndpointConnectionError": Retry.BACKOFF,
    "ConnectTimeoutError": Retry.BACKOFF,
    # The request was sent and no answer came: Bedrock may have run and billed it.
    "ReadTimeoutError": Retry.NEVER,
    "ConnectionClosedError": Retry.NEVER,
    "ResponseStreamingError": Retry.NEVER,
}
#: Transport failures after the request was sent: counted as paid, never retried (a retry
#: could pay twice for one reservation).
POSSIBLY_BILLED = frozenset({"ReadTimeoutError", "ConnectionClosedError",
                             "ResponseStreamingError"})
# taskType of the Amazon image models per catalog operation
_AMAZON_TASKS = {"background": "BACKGROUND_REMOVAL", "lighting": "IMAGE_VARIATION"}
_VARIATION_FIELDS = ("text", "negativeText", "similarityStrength")
_CONFIG_FIELDS = ("quality", "cfgScale", "seed")


def classify(code: str, http_status: int | None = None) -> Retry:
    """How an InvokeModel error is retried; unknown codes by status (5xx: with backoff)."""
    if code in _RETRY:
        return _RETRY[code]
    return Retry.BACKOFF if http_status is not None and http_status >= 500 else Retry.NEVER


def failure_reason(code: str, message: str) -> str:
    """The ModelCallFailed reason of an error that is not retried."""
    kind = "model_not_found" if code == "ResourceNotFoundException" else "rejected"
    return f"{kind}: {code}: {message}"


def build_body(model: ModelEntry, image_b64: str, body_params: Mapping[str, Any]
               ) -> dict[str, Any]:
    """The JSON body of InvokeModel for ``model``'s family."""
    params = dict(body_params)
    if model.family == "stability-image-edit":
        return {"image": image_b64, **params}
    if model.family == "stability-upscale-prompted":
        if not params.get("prompt"):
            raise ModelCallFailed(f"rejected: {model.id} requires a prompt")
        return {"image": image_b64, **params}
    if model.family == "amazon-image-task":
        task = _AMAZON_TASKS.get(model.operation)
        if task == "BACKGROUND_REMOVAL":
            return {"taskType": task, "backgroundRemovalParams": {"image": image_b64}}
        if task == "IMAGE_VARIATION":
            variation = {k: params[k] for k in _VARIATION_FIELDS if k in params}
            config = {k: params[k] for k in _CONFIG_FIELDS if k in params}
            return {"taskType": task,
                    "imageVariationParams": {"images": [image_b64], **variation},
                    "imageGenerationConfig": {"numberOfImages": 1, **config}}
        raise ModelCallFailed(f"rejected: no Amazon image task for operation {model.operation}")
    raise ModelCallFailed(f"rejected: unknown request family {model.family!r} of {model.id}")


def parse_response(model: ModelEntry, body: bytes) -> bytes:
    """The first image of an InvokeModel answer; ModelCallFailed for filtered or empty ones.

    Stability answers ``{"seeds", "finish_reasons", "images"}`` (a filtered answer may have
    no images); Amazon answers ``{"images", "error"?}`` and drops moderated images.
    """
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCallFailed(f"bad_response: not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise ModelCallFailed(f"bad_response: expected an object, got {type(answer).__name__}")
    reasons = [r for r in answer.get("finish_reasons") or [] if r]
    if reasons:
        kind = "content_filtered" if str(reasons[0]).startswith("Filter reason") else "model_error"
        raise ModelCallFailed(f"{kind}: {reasons[0]}")
    images = answer.get("images") or []
    if not images or not isinstance(images[0], str) or not images[0]:
        if answer.get("error"):
            raise ModelCallFailed(f"content_filtered: {answer['error']}")
        raise ModelCallFailed(f"bad_response: no image in the answer of {model.id}")
    try:
        return base64.b64decode(images[0], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelCallFailed(f"bad_response: image is not base64: {exc}") from None


def sniff_format(data: bytes) -> str:
    """png, jpeg or webp from the magic bytes; ModelCallFailed for anything else."""
    found = sniff_image_format(data)
    if found not in ("png", "jpeg", "webp"):
        raise ModelCallFailed(f"bad_response: the image is neither PNG, JPEG nor WebP "
                              f"(starts with {data[:8]!r})")
    return found
