"""Bedrock runtime emulator: the InvokeModel HTTP API for the model catalog's image models.

Why: Amazon Bedrock cannot be reached from the development machine, and moto answers
``{}`` for image models. The pipeline calls this server through the same boto3
``bedrock-runtime`` client as in production (only ``endpoint_url`` differs), so request
bodies, error mapping, retries and billing are exercised for real:

* validation like the service: body size, model id (unknown: ValidationException; retired:
  ResourceNotFoundException), the request body of the model's family (missing, extraneous
  and out-of-range keys), base64 and image format, each model's input limits from
  ``services/data/models.toml``;
* real work by local stand-ins (``imaging/ops``): product-mask background removal to a PNG with
  alpha, 4x Lanczos fast upscale, ~4 MP prompted upscales, ``cv2.inpaint``, outpainting by
  stretched edges; run in a thread pool so that the event loop keeps answering while
  images are processed;
* faults on demand, decided per call by a seeded RNG: throttling, 5xx, model timeouts,
  content filtering, lognormal latency and outage windows; from the ``emulator_*`` settings
  at start and changed at run time through the admin API;
* counters of what AWS would bill (a 200 with an image) and of every other outcome.

Errors have the AWS shape (status, ``x-amzn-ErrorType: <Name>:...``, ``{"message": ...}``)
so botocore raises ``client.exceptions.<Name>``.

HTTP API::

    POST /model/{modelId}/invoke   InvokeModel (modelId URL-encoded, cross-region prefix ok)
    GET  /_emulator/health         {"status": "ok", "models": N}
    GET  /_emulator/stats          counters per model and in total, billed_usd, faults
    POST /_emulator/faults         partial update of the faults; {"outage_seconds": N}
    POST /_emulator/reset          counters cleared, faults back to the settings

Start it with ``imgstream emulator bedrock [--host H] [--port P]`` (the embedded stack does).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from imaging.matting import composite
from imaging.ops import sharpen
from imaging.ops import upscale as lanczos_upscale
from imaging.ops.background import product_alpha
from imaging.segmentation import MaskRules
from imaging.validation import sniff_format
from services.model_catalog import ModelCatalog, ModelEntry, load_catalog
from streams.settings import Settings

log = logging.getLogger("imgstream.bedrock_emulator")

MAX_BODY_BYTES = 25_000_000
# Header check before any pixel is decoded, for models whose catalog entry has no
# max_pixels (a 25 MB PNG can hold a decompression bomb).
MAX_DECODE_PIXELS = 50_000_000
IMAGE_FORMATS = ("jpeg", "png", "webp")  # accepted in, offered out
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
)
MAX_SEED = 4_294_967_294
PROMPTED_UPSCALE_PIXELS = 4_194_304  # "to 4K": about 4 MP, aspect kept
OUTPAINT_SIDES = ("left", "right", "up", "down")
FILTER_REASON = "Filter reason: output image"
# Cross-region inference profiles prefix the model id with a geography.
GEO_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_Z95 = 1.6448536269514722  # standard normal quantile of 0.95

# The counters of one model; "billed" is a 200 with an image, the only thing AWS charges.
COUNTERS = ("received", "billed", "throttled", "errors", "timeouts", "filtered", "rejected")
# Per faulty outcome: the counter it goes to and the error answer, worded like the service.
FAULT_ANSWERS: dict[str, tuple[str, str, int, str]] = {
    "throttled": ("throttled", "ThrottlingException", 429,
                  "Too many requests, please wait before trying again."),
    "internal": ("errors", "InternalServerException", 500,
                 "The server encountered an internal error while processing the request."),
    "unavailable": ("errors", "ServiceUnavailableException", 503,
                    "Service is temporarily unavailable. Please try again later."),
    "timeout": ("timeouts", "ModelTimeoutException", 408,
                "Model has timed out in processing the request. Try your request again."),
}


class BedrockError(Exception):
    """An error answer of the service: its AWS exception name, HTTP status and message."""

    def __init__(self, name: str, status: int, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.status = status
        self.message = message


def validation_error(message: str) -> BedrockError:
    return BedrockError("ValidationException", 400, message)


def malformed(detail: str) -> BedrockError:
    """The service's wording for a body that breaks the model's JSON schema."""
    return validation_error(
        f"Malformed input request: {detail}, please reformat your input and try again.")


# --- faults --------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What goes wrong, per call. Rates are probabilities; latency_ms is the median of a
    lognormal distribution whose 95th percentile is latency_p95_ms (constant if not above)."""

    throttle_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    filter_rate: float = 0.0
    latency_ms: float = 0.0
    latency_p95_ms: float = 0.0
    # How long a call that ends in ModelTimeoutException hangs first (admin API only).
    timeout_delay_ms: float = 1000.0
    seed: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> Faults:
        return cls(
            throttle_rate=settings.emulator_throttle_rate,
            error_rate=settings.emulator_error_rate,
            timeout_rate=settings.emulator_timeout_rate,
            filter_rate=settings.emulator_filter_rate,
            latency_ms=settings.emulator_latency_ms,
            latency_p95_ms=settings.emulator_latency_p95_ms,
            seed=settings.emulator_seed,
        )

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; ValueError names the first bad key or value."""
        fields = {f.name for f in dataclasses.fields(self)}
        checked: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError(f"unknown fault setting {key!r}; known: {sorted(fields)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, got {value!r}")
            if key == "seed":
                if not float(value).is_integer():
                    raise ValueError(f"seed must be an integer, got {value!r}")
                checked[key] = int(value)
                continue
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
            if key.endswith("_rate") and value > 1:
                raise ValueError(f"{key} is a probability: 0..1, got {value!r}")
            checked[key] = float(value)
        return dataclasses.replace(self, **checked)


@dataclass(frozen=True)
class Fate:
    """One call's drawn outcome: throttled | internal | unavailable | timeout | filtered |
    ok, plus its model latency and the seed it reports."""

    outcome: str
    latency_s: float
    seed: int


def latency_seconds(median_ms: float, p95_ms: float, z: float) -> float:
    """The lognormal latency at standard-normal deviate ``z``: median ``median_ms``, 95th
    percentile ``p95_ms`` (constant ``median_ms`` when p95 is not above the median)."""
    if median_ms <= 0:
        return 0.0
    sigma = math.log(p95_ms / median_ms) / _Z95 if p95_ms > median_ms else 0.0
    return median_ms * math.exp(sigma * z) / 1000.0


def draw_fate(rng: random.Random, faults: Faults) -> Fate:
    """Decide one call. Rates apply in order (throttle, 5xx, timeout, filter), each to the
    calls the previous ones let through. Every call consumes the same draws, so a seed gives
    the same sequence of draws whatever the rates are."""
    throttle, error, kind, timeout, filtered = (rng.random() for _ in range(5))
    latency = latency_seconds(faults.latency_ms, faults.latency_p95_ms, rng.gauss(0.0, 1.0))
    seed = rng.randint(1, MAX_SEED)
    if throttle < faults.throttle_rate:
        outcome = "throttled"
    elif error < faults.error_rate:
        outcome = "internal" if kind < 0.5 else "unavailable"
    elif timeout < faults.timeout_rate:
        outcome = "timeout"
    elif filtered < faults.filter_rate:
        outcome = "filtered"
    else:
        outcome = "ok"
    return Fate(outcome, latency, seed)


# --- request validation --------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One key of a request body: JSON type, whether required, range or choices."""

    kind: type
    required: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    default: Any = None


# JSON type names as the service's schema errors spell them
_TYPE_NAMES: dict[type, str] = {
    str: "String", int: "Integer", float: "Number", bool: "Boolean", list: "JSONArray",
    dict: "JSONObject", type(None): "Null",
}
_IMAGE_BODY = {
    "image": Param(str, required=True),
    "output_format": Param(str, choices=IMAGE_FORMATS, default="png"),
}
_PROMPT = {
    "prompt": Param(str, required=True, low=1, high=10_000),
    "negative_prompt": Param(str, high=10_000),
    "seed": Param(int, low=0, high=MAX_SEED, default=0),
}
# Request bodies by (catalog family, catalog operation).
SCHEMAS: dict[tuple[str, str], dict[str, Param]] = {
    ("stability-image-edit", "background"): _IMAGE_BODY,
    ("stability-image-edit", "upscale"): _IMAGE_BODY,
    ("stability-image-edit", "inpaint"): {
        **_IMAGE_BODY, **_PROMPT,
        "mask": Param(str),
        "grow_mask": Param(int, low=0, high=20, default=5),
        "style_preset": Param(str, choices=STYLE_PRESETS),
    },
    ("stability-image-edit", "outpaint"): {
        **_IMAGE_BODY, **{side: Param(int, low=0, high=2000, default=0) for side in OUTPAINT_SIDES},
        "prompt": Param(str, high=10_000),
        "seed": _PROMPT["seed"],
        "creativity": Param(float, low=0.0, high=1.0, default=0.5),
        "style_preset": Param(str, choices=STYLE_PRESETS),
    },
    ("stability-upscale-prompted", "upscale"): {
        **_IMAGE_BODY, **_PROMPT,
        "creativity": Param(float, low=0.1, high=0.5, default=0.35),
        "style_preset": Param(str, choices=STYLE_PRESETS),
    },
}


def resolve_model(catalog: ModelCatalog, model_id: str) -> ModelEntry:
    """The catalog entry behind a model id, inference-profile id or foundation-model ARN."""
    candidate = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    entry = catalog.models.get(candidate)
    if entry is None:
        for prefix in GEO_PREFIXES:
            if candidate.startswith(prefix):
                entry = catalog.models.get(candidate.removeprefix(prefix))
                break
    if entry is None:
        raise validation_error("The provided model identifier is invalid.")
    if not entry.callable:
        raise BedrockError(
            "ResourceNotFoundException", 404,
            "This model version has reached the end of its life. "
            "Please refer to the AWS documentation for more details.")
    return entry


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise validation_error(
            "Malformed input request, please reformat your input and try again.") from None


def body_too_large() -> BedrockError:
    return validation_error(
        "1 validation error detected: Value at 'body' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_BODY_BYTES}")


def check_body(entry: ModelEntry, body: Any) -> dict[str, Any]:
    """The request's params with defaults filled in, or the service's schema error."""
    schema = SCHEMAS.get((entry.family, entry.operation))
    if schema is None:
        raise validation_error(
            f"The emulator does not implement request family {entry.family!r} "
            f"(operation {entry.operation!r}) of {entry.id}.")
    if not isinstance(body, dict):
        raise malformed(f"#: expected type: JSONObject, found: {_TYPE_NAMES[type(body)]}")
    for key in body:
        if key not in schema:
            raise malformed(f"#: extraneous key [{key}] is not permitted")
    params: dict[str, Any] = {}
    for key, param in schema.items():
        if key not in body:
            if param.required:
                raise malformed(f"#: required key [{key}] not found")
            params[key] = param.default
            continue
        params[key] = _check_value(key, body[key], param)
    return params


def _check_value(key: str, value: Any, param: Param) -> Any:
    number = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value))
    if param.kind is str:
        fits = isinstance(value, str)
    else:
        fits = number and (param.kind is float or float(value).is_integer())
    if not fits:
        raise malformed(f"#/{key}: expected type: {_TYPE_NAMES[param.kind]}, "
                        f"found: {_TYPE_NAMES[type(value)]}")
    if param.choices and value not in param.choices:
        raise malformed(f"#/{key}: {value} is not a valid enum value")
    size = len(value) if isinstance(value, str) else value
    what = "length" if isinstance(value, str) else "value"
    if param.low is not None and size < param.low:
        raise malformed(
            f"#/{key}: {what} {size} is not greater or equal to {_number(param.low)}")
    if param.high is not None and size > param.high:
        raise malformed(
            f"#/{key}: {what} {size} is not less or equal to {_number(param.high)}")
    return int(value) if param.kind is int else value


def _number(value: float) -> str:
    """Limits as people write them: 1048576, not 1.04858e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def decode_image(encoded: str, key: str = "image") -> np.ndarray:
    """A base64 JPEG/PNG/WebP as uint8 BGR, or BGRA when it has an alpha channel."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise validation_error(f"Invalid base64 in {key}.") from None
    if sniff_format(data) not in IMAGE_FORMATS:
        raise validation_error(f"{key} must be a JPEG, PNG or WebP image.")
    try:
        width, height = Image.open(io.BytesIO(data)).size
    except (UnidentifiedImageError, OSError, ValueError):
        raise validation_error(f"{key} could not be decoded.") from None
    if width * height > MAX_DECODE_PIXELS:
        raise validation_error(
            f"{key} is {width}x{height} = {width * height} pixels; at most "
            f"{MAX_DECODE_PIXELS} are accepted.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise validation_error(f"{key} could not be decoded.")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def check_limits(entry: ModelEntry, width: int, height: int) -> None:
    """The model's input limits from the catalog, each with its own clear message."""
    limits = {key: _number(value) for key, value in entry.limits.items()}
    short, long = min(width, height), max(width, height)
    pixels, aspect = width * height, width / height
    size, model = f"The input image is {width}x{height} px", entry.id
    if "min_side" in limits and short < entry.limits["min_side"]:
        raise validation_error(
            f"{size}: each side must be at least {limits['min_side']} px for {model}.")
    if "max_side" in limits and long > entry.limits["max_side"]:
        raise validation_error(
            f"{size}: each side must be at most {limits['max_side']} px for {model}.")
    if "min_pixels" in limits and pixels < entry.limits["min_pixels"]:
        raise validation_error(f"{size} ({pixels} pixels): at least {limits['min_pixels']} "
                               f"pixels are required for {model}.")
    if "max_pixels" in limits and pixels > entry.limits["max_pixels"]:
        raise validation_error(f"{size} ({pixels} pixels): at most {limits['max_pixels']} "
                               f"pixels are allowed for {model}.")
    low, high = entry.limits.get("min_aspect", 0.0), entry.limits.get("max_aspect", math.inf)
    if not low <= aspect <= high:
        raise validation_error(
            f"{size}: aspect ratio (width / height) {aspect:.3f} is outside "
            f"{_number(low)}..{_number(high)} for {model}.")


# --- the models' local stand-ins -----------------------------------------------------


def flatten(image: np.ndarray) -> np.ndarray:
    """BGR from BGR or BGRA; transparency composited on white, how a marketplace shows it."""
    if image.shape[2] == 3:
        return image
    alpha = image[..., 3:].astype(np.float32) / 255.0
    out = image[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def remove_background(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The product cut out (BGRA, transparent background) and the same on white (BGR).

    The stand-in uses the project's own local method (product mask and full-size matte,
    :mod:`imaging.ops.background`) so e2e outputs look like real ones; like the real
    model it always answers, trusted mask or not.
    """
    alpha = product_alpha(bgr, MaskRules(), require_confident=False)
    on_white = composite(bgr, alpha, (255, 255, 255))
    return np.dstack([bgr, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)]), on_white


def fast_upscale(bgr: np.ndarray) -> np.ndarray:
    """Exactly 4x each side: Lanczos, then a mild unsharp mask."""
    height, width = bgr.shape[:2]
    big = lanczos_upscale(bgr, short_side=4 * min(height, width), max_scale=4.0)
    if big.shape[:2] != (4 * height, 4 * width):  # rounding of the long side
        big = cv2.resize(big, (4 * width, 4 * height), interpolation=cv2.INTER_LANCZOS4)
    return sharpen(big, amount=0.4)


def prompted_upscale(bgr: np.ndarray, creativity: float) -> np.ndarray:
    """About 4 MP with the aspect kept; more creativity, more sharpening.

    A direct Lanczos resize: the creative model takes 64x64 inputs, a 32x scale beyond the
    ``upscale`` op's cap.
    """
    height, width = bgr.shape[:2]
    scale = math.sqrt(PROMPTED_UPSCALE_PIXELS / (width * height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = cv2.INTER_LANCZOS4 if scale > 1 else cv2.INTER_AREA
    return sharpen(cv2.resize(bgr, size, interpolation=method), amount=0.3 + creativity)


def inpaint(bgr: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Telea inpainting of ``region`` (255 = paint): a local stand-in for generative fill."""
    return cv2.inpaint(bgr, region, 5, cv2.INPAINT_TELEA)


def outpaint(bgr: np.ndarray, left: int, right: int, up: int, down: int) -> np.ndarray:
    """The frame extended by stretching its edge pixels outward: a studio backdrop continues
    plausibly, which is all a local stand-in for generative outpainting can promise."""
    return cv2.copyMakeBorder(bgr, up, down, left, right, cv2.BORDER_REPLICATE)


def encode(image: np.ndarray, output_format: str) -> bytes:
    """JPEG (always opaque), PNG or WebP (both keep alpha)."""
    if output_format == "jpeg":
        ok, buffer = cv2.imencode(".jpg", flatten(image), [cv2.IMWRITE_JPEG_QUALITY, 95])
    elif output_format == "webp":
        ok, buffer = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 95])
    else:
        ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise BedrockError("InternalServerException", 500, f"could not encode {output_format}")
    return buffer.tobytes()


@dataclass(frozen=True)
class Inputs:
    """A request's decoded pixels: the image (BGR) and, for inpainting, the region to
    paint (uint8, 255 = paint, already grown by grow_mask)."""

    image: np.ndarray
    region: np.ndarray | None = None


def decode_input(entry: ModelEntry, params: Mapping[str, Any]) -> Inputs:
    """Decode and check everything a request carries, before any fault or work, so that a
    bad request is rejected whatever the faults (CPU work: call it in a thread)."""
    image = decode_image(params["image"])
    check_limits(entry, image.shape[1], image.shape[0])
    if entry.operation == "outpaint" and not any(params[side] for side in OUTPAINT_SIDES):
        raise validation_error("At least one of left, right, up or down must be above 0.")
    if entry.operation != "inpaint":
        return Inputs(flatten(image))
    if params.get("mask"):
        mask = decode_image(params["mask"], "mask")
        if mask.shape[:2] != image.shape[:2]:
            raise validation_error(
                f"mask is {mask.shape[1]}x{mask.shape[0]} px but the image is "
                f"{image.shape[1]}x{image.shape[0]} px; they must match.")
        region = cv2.cvtColor(flatten(mask), cv2.COLOR_BGR2GRAY)
    elif image.shape[2] == 4:  # as the service does: the transparent area is painted
        region = 255 - image[..., 3]
    else:
        raise validation_error("mask is required when the image has no alpha channel.")
    region = np.where(region > 127, 255, 0).astype(np.uint8)
    grow = params["grow_mask"]
    if grow > 0:
        region = cv2.dilate(region, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return Inputs(flatten(image), region)


def run_model(entry: ModelEntry, params: Mapping[str, Any], inputs: Inputs) -> bytes:
    """The model's output image, encoded as asked (CPU work: call it in a thread)."""
    fmt = params["output_format"]
    if entry.operation == "background":
        cutout, on_white = remove_background(inputs.image)
        return encode(on_white if fmt == "jpeg" else cutout, fmt)
    if entry.family == "stability-upscale-prompted":
        return encode(prompted_upscale(inputs.image, params["creativity"]), fmt)
    if entry.operation == "upscale":
        return encode(fast_upscale(inputs.image), fmt)
    if entry.operation == "outpaint":
        return encode(outpaint(inputs.image, *(params[side] for side in OUTPAINT_SIDES)), fmt)
    assert inputs.region is not None, "decode_input makes the region of every inpaint"
    return encode(inpaint(inputs.image, inputs.region), fmt)


# --- the server ----------------------------------------------------------------------


class Emulator:
    """State of one emulator: catalog, faults, seeded RNG, counters, outage window."""

    def __init__(self, catalog: ModelCatalog, faults: Faults, threads: int = 2) -> None:
        self.catalog = catalog
        self.initial_faults = faults
        self.executor = ThreadPoolExecutor(max_workers=threads,
                                           thread_name_prefix="bedrock-emulator")
        self.started = time.monotonic()
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        self.faults = self.initial_faults
        self.rng = random.Random(self.faults.seed)
        self.outage_until = 0.0
        self.counts: dict[str, dict[str, int]] = {}

    def count(self, model_id: str, counter: str) -> None:
        counts = self.counts.setdefault(model_id, dict.fromkeys(COUNTERS, 0))
        counts[counter] += 1

    def set_faults(self, changes: Mapping[str, Any]) -> None:
        """Partial update; a new seed restarts the RNG's sequence."""
        changes = dict(changes)
        outage = changes.pop("outage_seconds", None)
        if outage is not None and (isinstance(outage, bool) or not isinstance(outage, int | float)
                                   or not 0 <= outage <= 86_400):
            raise ValueError(f"outage_seconds must be a number 0..86400, got {outage!r}")
        faults = self.faults.updated(changes)
        if faults.seed != self.faults.seed:
            self.rng = random.Random(faults.seed)
        self.faults = faults
        if outage is not None:
            self.outage_until = time.monotonic() + outage

    def outage_remaining(self) -> float:
        return max(0.0, self.outage_until - time.monotonic())

    def stats(self) -> dict[str, Any]:
        models: dict[str, dict[str, Any]] = {}
        totals: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
        totals["billed_usd"] = 0.0
        for model_id, counts in sorted(self.counts.items()):
            entry = self.catalog.models.get(model_id)
            usd = round(counts["billed"] * (entry.price_usd if entry else 0.0), 6)
            models[model_id] = {**counts, "billed_usd": usd}
            for counter in COUNTERS:
                totals[counter] += counts[counter]
            totals["billed_usd"] = round(totals["billed_usd"] + usd, 6)
        return {
            "models": models,
            "totals": totals,
            "in_flight": self.in_flight,
            "faults": dataclasses.asdict(self.faults),
            "outage_remaining_seconds": round(self.outage_remaining(), 3),
            "uptime_seconds": round(time.monotonic() - self.started, 3),
        }

    # handlers ---------------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._invoke(request)
        finally:
            self.in_flight -= 1

    async def _invoke(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]
        try:
            entry = resolve_model(self.catalog, model_id)
        except BedrockError as exc:
            self.count(model_id, "received")
            self.count(model_id, "rejected")
            return error_response(exc)
        key = entry.id
        self.count(key, "received")
        fate = draw_fate(self.rng, self.faults)
        if self.outage_remaining() > 0:
            return self._fault(key, "unavailable")
        if fate.outcome == "throttled":  # the front door refuses before reading the body
            return self._fault(key, "throttled")
        loop = asyncio.get_running_loop()
        try:
            params = check_body(entry, parse_body(await _read_body(request)))
            inputs = await loop.run_in_executor(self.executor, decode_input, entry, params)
        except BedrockError as exc:
            self.count(key, "rejected")
            return error_response(exc)
        if fate.outcome in FAULT_ANSWERS:  # the model fails, after its time
            timeout = fate.outcome == "timeout"
            await asyncio.sleep(self.faults.timeout_delay_ms / 1000 if timeout else fate.latency_s)
            return self._fault(key, fate.outcome)
        seed = params.get("seed") or fate.seed
        if fate.outcome == "filtered":
            await asyncio.sleep(fate.latency_s)
            self.count(key, "filtered")
            return json_response({"seeds": [seed], "finish_reasons": [FILTER_REASON]})
        try:
            output, _ = await asyncio.gather(
                loop.run_in_executor(self.executor, run_model, entry, params, inputs),
                asyncio.sleep(fate.latency_s))
        except Exception:
            log.exception("model %s failed", key)
            return self._fault(key, "internal")
        self.count(key, "billed")
        return json_response({"seeds": [seed], "finish_reasons": [None],
                              "images": [base64.b64encode(output).decode("ascii")]})

    def _fault(self, model_id: str, outcome: str) -> web.Response:
        counter, name, status, message = FAULT_ANSWERS[outcome]
        self.count(model_id, counter)
        return error_response(BedrockError(name, status, message))

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "models": len(self.catalog.models)})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def post_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object of fault settings")
            self.set_faults(changes)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"message": str(exc)}, status=400)
        log.info("faults now %s, outage %.1fs", self.faults, self.outage_remaining())
        return web.json_response({"faults": dataclasses.asdict(self.faults),
                                  "outage_remaining_seconds": round(self.outage_remaining(), 3)})

    async def post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"faults": dataclasses.asdict(self.faults),
                                  "outage_remaining_seconds": 0.0})


async def _read_body(request: web.Request) -> bytes:
    """The request body, at most MAX_BODY_BYTES of it."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise body_too_large()
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large() from None


def json_response(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(payload), content_type="application/json",
                        headers={"x-amzn-RequestId": str(uuid.uuid4())})


def error_response(exc: BedrockError) -> web.Response:
    """The AWS error shape botocore maps to ``client.exceptions.<name>``."""
    return web.Response(
        status=exc.status, body=json.dumps({"message": exc.message}),
        content_type="application/json",
        headers={"x-amzn-ErrorType": f"{exc.name}:{ERROR_NAMESPACE}",
                 "x-amzn-RequestId": str(uuid.uuid4())})


def create_app(settings: Settings, catalog: ModelCatalog | None = None) -> web.Application:
    """The emulator's aiohttp application, faults from ``settings``."""
    emulator = Emulator(catalog or load_catalog(), Faults.from_settings(settings),
                        threads=settings.image_threads)
    # aiohttp refuses a bigger body while reading it; _read_body answers that the way the
    # service does (ValidationException), not with aiohttp's 413.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/model/{model_id:.+}/invoke", emulator.invoke)
    app.router.add_get("/_emulator/health", emulator.health)
    app.router.add_get("/_emulator/stats", emulator.get_stats)
    app.router.add_post("/_emulator/faults", emulator.post_faults)
    app.router.add_post("/_emulator/reset", emulator.post_reset)

    async def shutdown(_: web.Application) -> None:
        emulator.executor.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)
    return app


def bind_address(settings: Settings) -> tuple[str, int]:
    """Where to listen by default: the host and port of ``bedrock_endpoint``.

    Binding the endpoint's own host name keeps the embedded stack on loopback and makes a
    container named in the endpoint (docker-compose's ``bedrock``) reachable by the others.
    """
    endpoint = urlsplit(settings.bedrock_endpoint or "")
    return endpoint.hostname or "127.0.0.1", endpoint.port or 15002


def run_emulator(settings: Settings, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    faults = Faults.from_settings(settings)
    log.info("Bedrock emulator on http://%s:%d, faults %s", host, port, faults)
    web.run_app(create_app(settings), host=host, port=port, print=None,
                access_log_format='%a "%r" %s %b %Tfs')
