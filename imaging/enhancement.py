"""Run a plan's local steps on an image (pure): the enhance_local stage minus Kafka.

A step that fails (bad parameters, an operation error) is recorded as failed with the
reason and skipped - the image goes on with the other steps rather than being lost. A
step that declines (it cannot do its work safely, e.g. no trusted product mask) succeeds
without changing the image, its details starting with ``declined:`` and the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from imaging.decoding import decode_image
from imaging.errors import PermanentError, StepDeclined
from imaging.ops import apply_operation


@dataclass(frozen=True)
class StepResult:
    order: int
    operation: str
    method: str
    model_id: str | None
    success: bool
    latency_ms: float
    cost_usd: float
    details: str | None
    fallback_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def apply_plan(bgr: np.ndarray, steps: list[dict[str, Any]]) -> tuple[np.ndarray, list[StepResult]]:
    """Apply the steps in order; returns the result and one StepResult per step."""
    results, source = [], bgr
    for step in sorted(steps, key=lambda s: s["order"]):
        started = time.perf_counter()
        success, details = True, None
        try:
            bgr = apply_operation(step["operation"], bgr, step.get("params") or {}, source)
        except StepDeclined as declined:
            details = f"declined: {declined}"
        except (PermanentError, cv2.error, ValueError) as exc:
            success, details = False, f"{type(exc).__name__}: {exc}"
        results.append(StepResult(
            order=step["order"], operation=step["operation"], method=step["method"],
            model_id=step.get("model_id"), success=success,
            latency_ms=round((time.perf_counter() - started) * 1000, 2), cost_usd=0.0,
            details=details, fallback_reason=step.get("fallback_reason")))
    return bgr, results


def enhance_again(original: bytes, steps: list[dict[str, Any]], max_side: int) -> np.ndarray:
    """A local plan's result made again from the original (local steps are
    deterministic): finalize's fallback when the pixels were made in another process."""
    result, _ = apply_plan(decode_image(original, max_side).bgr, steps)
    return result


def encode_intermediate(bgr: np.ndarray) -> bytes:
    """The image handed from enhance_local to finalize through the object store.

    JPEG q95 without chroma subsampling: visually lossless (finalize re-encodes at q85
    anyway), a quarter of PNG's bytes and ten times faster to encode
    (docs/decisions/0005-intermediate-format.md).
    """
    ok, buffer = cv2.imencode(".jpg", bgr, [
        cv2.IMWRITE_JPEG_QUALITY, 95,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise PermanentError("cannot encode the intermediate image")
    return buffer.tobytes()
