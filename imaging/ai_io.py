"""What an AI step sends to a Bedrock model and how its answer becomes the step's result (pure).

Why here and not in the client: fitting a photo to a model's limits (sides, pixels, aspect)
and mapping the answer back (crop the padding, composite the cut-out, reach the local op's
size) is image work that must be testable without any server. The bytes sent are encoded
deterministically because the AI cache is keyed by their hash: the same photo and step must
give the same key, or the same work is paid twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from imaging.errors import PermanentError
from services.model_catalog import ModelEntry

# PNG keeps the pixels exact; above this size a JPEG q95 (4:4:4) keeps the base64 JSON body
# well under InvokeModel's 25,000,000 bytes (a 4 MP PNG is at most ~12 MB, 16 MB in base64).
PNG_MAX_PIXELS = 4_000_000
# Conservative upscale requires a prompt; a plain one keeps the model faithful to the photo.
DEFAULT_UPSCALE_PROMPT = "a sharp, detailed, faithful product photo"


@dataclass(frozen=True)
class PreparedInput:
    image: bytes  # what is sent (PNG or JPEG bytes), fitted to the model's limits
    body_params: dict[str, Any]  # extra body fields for the model, JSON-able
    scale: float  # factor applied to the input to fit limits (1.0 = untouched)
    pad: tuple[int, int, int, int]  # (top, bottom, left, right) pixels added for aspect limits
    source_size: tuple[int, int]  # (width, height) of the bgr given


def prepare_model_input(bgr: np.ndarray, model: ModelEntry, step: Mapping[str, Any]
                        ) -> PreparedInput:
    """Fit ``bgr`` to ``model``'s limits and encode it with the step's body parameters."""
    height, width = bgr.shape[:2]
    scale, pad = _fit(width, height, model)
    sent_w, sent_h = scaled_size((width, height), scale)
    image = bgr
    if (sent_w, sent_h) != (width, height):
        shrink = sent_w * sent_h < width * height
        image = cv2.resize(bgr, (sent_w, sent_h),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    if any(pad):
        image = cv2.copyMakeBorder(image, *pad, cv2.BORDER_REPLICATE)
    return PreparedInput(image=_encode(image), body_params=_body_params(model, step),
                         scale=scale, pad=pad, source_size=(width, height))


def apply_model_output(bgr: np.ndarray, output: bytes, prepared: PreparedInput,
                       step: Mapping[str, Any]) -> np.ndarray:
    """The step's result from the model's answer: BGR uint8, sized like the local op's."""
    decoded = cv2.imdecode(np.frombuffer(output, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise PermanentError(f"model output ({len(output)} bytes) is not a decodable image")
    image = _crop_padding(_to_8bit(decoded), prepared)
    params = step.get("params") or {}
    color = params.get("color", (255, 255, 255))
    image = _flatten(image, _bgr(color))
    if step["operation"] == "upscale":
        size = upscale_size(prepared.source_size, int(params.get("short_side", 1000)),
                            float(params.get("max_scale", 4.0)))
    else:
        size = prepared.source_size
    if (image.shape[1], image.shape[0]) != size:
        shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
        image = cv2.resize(image, size,
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)
    return np.ascontiguousarray(image)


def scaled_size(source_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size of the source once scaled (before padding), as sent to the model."""
    width, height = source_size
    return max(1, round(width * scale)), max(1, round(height * scale))


def upscale_size(source_size: tuple[int, int], short_side: int, max_scale: float
                 ) -> tuple[int, int]:
    """The size ``imaging.ops.upscale`` gives a photo of ``source_size`` (never smaller)."""
    width, height = source_size
    scale = min(short_side / min(height, width), max_scale)
    if scale <= 1.0:
        return width, height
    if height < width:
        new_h = min(short_side, round(height * scale))
        return round(width * new_h / height), new_h
    new_w = min(short_side, round(width * scale))
    return new_w, round(height * new_w / width)


def _fit(width: int, height: int, model: ModelEntry) -> tuple[float, tuple[int, int, int, int]]:
    """Scale and padding that satisfy every limit of ``model``; PermanentError if none does.

    The scale is first computed on the padded canvas, then nudged by about a pixel at a
    time while rounding still breaks a limit.
    """
    limits = model.limits
    min_aspect, max_aspect = limits.get("min_aspect"), limits.get("max_aspect")
    canvas_w = max(width, math.ceil(height * min_aspect)) if min_aspect else width
    canvas_h = max(height, math.ceil(width / max_aspect)) if max_aspect else height
    scale = _scale_for(canvas_w, canvas_h, limits)
    for _ in range(32):
        sent_w, sent_h = scaled_size((width, height), scale)
        pad = _aspect_pad(sent_w, sent_h, min_aspect, max_aspect)
        too_big, too_small = _violations(sent_w + pad[2] + pad[3], sent_h + pad[0] + pad[1],
                                         limits)
        if not (too_big or too_small):
            return scale, pad
        if too_big and too_small:
            break
        nudge = 1.0 / max(sent_w, sent_h)
        scale *= (1.0 - nudge) if too_big else (1.0 + nudge)
    raise PermanentError(f"a {width}x{height} photo cannot be fitted to {model.id}'s limits "
                         f"{dict(limits)}: {'; '.join(filter(None, (too_big, too_small)))}")


def _scale_for(width: int, height: int, limits: Mapping[str, float]) -> float:
    down = min(limits.get("max_side", math.inf) / max(width, height),
               math.sqrt(limits.get("max_pixels", math.inf) / (width * height)))
    if down < 1.0:
        return down
    return max(1.0, limits.get("min_side", 0) / min(width, height),
               math.sqrt(limits.get("min_pixels", 0) / (width * height)))


def _aspect_pad(width: int, height: int, min_aspect: float | None, max_aspect: float | None
                ) -> tuple[int, int, int, int]:
    if max_aspect and width / height > max_aspect:
        extra = math.ceil(width / max_aspect) - height
        return extra // 2, extra - extra // 2, 0, 0
    if min_aspect and width / height < min_aspect:
        extra = math.ceil(height * min_aspect) - width
        return 0, 0, extra // 2, extra - extra // 2
    return 0, 0, 0, 0


def _violations(width: int, height: int, limits: Mapping[str, float]) -> tuple[str, str]:
    """(what is too big, what is too small), empty strings when within limits."""
    big, small = [], []
    if max(width, height) > limits.get("max_side", math.inf):
        big.append(f"longest side {max(width, height)} > {limits['max_side']:g}")
    if width * height > limits.get("max_pixels", math.inf):
        big.append(f"{width * height} px > {limits['max_pixels']:g}")
    if min(width, height) < limits.get("min_side", 0):
        small.append(f"shortest side {min(width, height)} < {limits['min_side']:g}")
    if width * height < limits.get("min_pixels", 0):
        small.append(f"{width * height} px < {limits['min_pixels']:g}")
    return "; ".join(big), "; ".join(small)


def _encode(image: np.ndarray) -> bytes:
    """Deterministic bytes: the same pixels always give the same cache key."""
    if image.shape[0] * image.shape[1] <= PNG_MAX_PIXELS:
        ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, buffer = cv2.imencode(".jpg", image, [
            cv2.IMWRITE_JPEG_QUALITY, 95,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise PermanentError(f"cannot encode a {image.shape[1]}x{image.shape[0]} model input")
    return buffer.tobytes()


def _body_params(model: ModelEntry, step: Mapping[str, Any]) -> dict[str, Any]:
    """Body fields besides the image, per request family (services/bedrock_requests.py)."""
    params = step.get("params") or {}
    if model.family == "amazon-image-task":
        # Nova/Titan background removal always answers PNG with alpha; variations need text.
        return {} if model.operation == "background" else {"text": params.get("prompt", "")}
    # Background removal needs PNG for its alpha; an upscale of up to 4 MP in answers up to
    # 16 MP, which as JPEG stays a fraction of PNG's size (finalize re-encodes it anyway).
    body: dict[str, Any] = {"output_format": "png" if model.operation == "background"
                            else "jpeg"}
    if model.family == "stability-upscale-prompted":
        body["prompt"] = params.get("prompt") or DEFAULT_UPSCALE_PROMPT
        if "creativity" in params:
            body["creativity"] = params["creativity"]
    return body


def _to_8bit(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise PermanentError(f"model output has unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def _crop_padding(image: np.ndarray, prepared: PreparedInput) -> np.ndarray:
    """Remove the aspect padding, scaled to the output's size (models may resize)."""
    top, bottom, left, right = prepared.pad
    if not any(prepared.pad):
        return image
    sent_w, sent_h = scaled_size(prepared.source_size, prepared.scale)
    fy = image.shape[0] / (sent_h + top + bottom)
    fx = image.shape[1] / (sent_w + left + right)
    y0, y1 = round(top * fy), image.shape[0] - round(bottom * fy)
    x0, x1 = round(left * fx), image.shape[1] - round(right * fx)
    if y1 - y0 < 1 or x1 - x0 < 1:
        raise PermanentError(f"model output {image.shape[1]}x{image.shape[0]} is too small "
                             f"to remove padding {prepared.pad}")
    return image[y0:y1, x0:x1]


def _flatten(image: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    """Composite a BGRA answer (a cut-out) onto ``fill``; BGR passes through."""
    if image.shape[2] == 3:
        return image
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    out = image[..., :3].astype(np.float32) * alpha + np.asarray(fill, np.float32) * (1 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _bgr(color: Sequence[int]) -> tuple[int, int, int]:
    """Profile colours are RGB (like ``imaging.ops.background``)."""
    values = list(color) if isinstance(color, list | tuple) else []
    if len(values) != 3 or not all(isinstance(v, int | float) and 0 <= v <= 255 for v in values):
        raise PermanentError(f"color must be three integers 0..255 (RGB), got {color!r}")
    red, green, blue = (int(v) for v in values)
    return blue, green, red
