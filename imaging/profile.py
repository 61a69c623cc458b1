"""Thresholds profiles: typed, validated, versioned.

A profile is plain data (``profiles/<name>.toml``); this module turns the parsed TOML
into frozen dataclasses and refuses anything malformed with the offending field and the
reason, so a bad profile stops a worker at start instead of mis-scoring photos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from imaging.errors import ConfigurationError
from imaging.preservation import GateRules
from imaging.segmentation import MaskRules

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,2}([-+][A-Za-z0-9.]+)?$")
SUB_SCORES = ("sharpness", "brightness", "contrast", "noise", "naturalness", "resolution",
              "background")


@dataclass(frozen=True)
class LinearScale:
    """Maps a metric to 0-100: ``low`` -> 0, ``high`` -> 100 (either direction), clamped."""

    low: float
    high: float


@dataclass(frozen=True)
class BrightnessScale:
    ideal: float
    tolerance: float
    worst: float
    highlight_floor: float
    shadow_ceiling: float
    backdrop_floor: float


@dataclass(frozen=True)
class AssessmentSettings:
    working_max_side: int
    subject_aware: bool
    subject_padding: float


@dataclass(frozen=True)
class Scores:
    sharpness: LinearScale
    brightness: BrightnessScale
    contrast: LinearScale
    noise: LinearScale
    naturalness: LinearScale
    resolution: LinearScale
    background: LinearScale


@dataclass(frozen=True)
class Weights:
    sharpness: float
    brightness: float
    contrast: float
    noise: float
    naturalness: float
    resolution: float
    background: float


@dataclass(frozen=True)
class Tiers:
    excellent: float
    good: float
    excellent_requires_no_issues: bool


@dataclass(frozen=True)
class IssueThresholds:
    blurry_below: float
    brightness_deviation_above: float
    low_contrast_below: float
    noisy_above: float
    low_resolution_below: float
    cluttered_background_above: float
    low_perceptual_quality_above: float


@dataclass(frozen=True)
class Targets:
    short_side: int
    brightness: float
    contrast: float
    noise: float
    sharpness: float


@dataclass(frozen=True)
class BackgroundSettings:
    saturation_density: float
    canny_low: int
    canny_high: int


@dataclass(frozen=True)
class RoutingModels:
    """Bedrock model id per operation; empty = that operation is always local."""

    background: str
    upscale: str
    lighting: str


@dataclass(frozen=True)
class Routing:
    background_cleanup_above: float
    ai_background_above: float
    upscale_below: float
    ai_upscale_blur_below: float
    lighting_deviation_above: float
    ai_lighting_deviation_above: float
    darken_bright_photos: bool
    denoise_above: float
    contrast_below: float
    deblur_blur_below: float
    ai_background_reasons: list
    ai_upscale_short_side_below: float
    models: RoutingModels


@dataclass(frozen=True)
class Enhancement:
    sharpen_amount: float
    sharpen_radius: float
    clahe_clip_limit: float
    background_color: list
    background_work_side: int
    background_iterations: int
    upscale_max_scale: float


@dataclass(frozen=True)
class Outputs:
    large_max_side: int
    thumb_max_side: int
    jpeg_quality: int
    webp_quality: int
    webp_method: int  # libwebp effort 0-6: bytes against encode time (docs/benchmarks.md)
    min_improvement: float
    upscaled_score_tolerance: float


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    description: str
    assessment: AssessmentSettings
    scores: Scores
    weights: Weights
    tiers: Tiers
    issues: IssueThresholds
    targets: Targets
    background: BackgroundSettings
    routing: Routing
    enhancement: Enhancement
    outputs: Outputs
    segmentation: MaskRules
    gate: GateRules

    @property
    def ref(self) -> dict[str, str]:
        """What events and rows record about the profile that produced them."""
        return {"name": self.name, "version": self.version}


def parse_profile(data: dict[str, Any], source: str) -> Profile:
    """Build and validate a Profile; ConfigurationError names the field and the reason."""
    p = _Parser(source)
    name = p.string(data, "name")
    if not _NAME.match(name):
        p.fail("name", "lowercase letters, digits, '-' or '_', at most 64 characters")
    version = p.string(data, "version")
    if not _VERSION.match(version):
        p.fail("version", "a version such as 1.0.0")
    p.only(data, {"name", "version", "description", *(f.name for f in fields(Profile))}, "")
    scores_data = p.table(data, "scores")
    scores = Scores(
        brightness=p.build(BrightnessScale, p.table(scores_data, "brightness", "scores."),
                           "scores.brightness"),
        **{name_: p.build(LinearScale, p.table(scores_data, name_, "scores."), f"scores.{name_}")
           for name_ in SUB_SCORES if name_ != "brightness"},
    )
    p.only(scores_data, set(SUB_SCORES), "scores.")
    profile = Profile(
        name=name,
        version=version,
        description=str(data.get("description", "")),
        assessment=p.build(AssessmentSettings, p.table(data, "assessment"), "assessment"),
        scores=scores,
        weights=p.build(Weights, p.table(data, "weights"), "weights"),
        tiers=p.build(Tiers, p.table(data, "tiers"), "tiers"),
        issues=p.build(IssueThresholds, p.table(data, "issues"), "issues"),
        targets=p.build(Targets, p.table(data, "targets"), "targets"),
        background=p.build(BackgroundSettings, p.table(data, "background"), "background"),
        routing=_routing(p, p.table(data, "routing")),
        enhancement=p.build(Enhancement, p.table(data, "enhancement"), "enhancement"),
        outputs=p.build(Outputs, p.table(data, "outputs"), "outputs"),
        segmentation=p.rules(MaskRules, p.table(data, "segmentation"), "segmentation"),
        gate=p.rules(GateRules, p.table(data, "gate"), "gate"),
    )
    _check_semantics(profile, p)
    return profile


def _routing(p: _Parser, data: dict[str, Any]) -> Routing:
    models = p.build(RoutingModels, p.table(data, "models", "routing."), "routing.models")
    plain = {k: v for k, v in data.items() if k != "models"}
    plain["models"] = models
    return p.build(Routing, plain, "routing", nested={"models"})


def _check_semantics(profile: Profile, p: _Parser) -> None:
    a = profile.assessment
    if a.working_max_side < 128:
        p.fail("assessment.working_max_side", "must be at least 128")
    if not 0 <= a.subject_padding < 0.5:
        p.fail("assessment.subject_padding", "must be in [0, 0.5)")
    for name_ in SUB_SCORES:
        scale = getattr(profile.scores, name_)
        if isinstance(scale, LinearScale) and scale.low == scale.high:
            p.fail(f"scores.{name_}", "low and high must differ")
    if profile.scores.sharpness.low <= 0:
        p.fail("scores.sharpness.low", "must be > 0 (log scale)")
    b = profile.scores.brightness
    if not 0 <= b.tolerance < b.worst:
        p.fail("scores.brightness", "needs 0 <= tolerance < worst")
    weights = [getattr(profile.weights, n) for n in SUB_SCORES]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        p.fail("weights", "must be >= 0 with a positive sum")
    t = profile.tiers
    if not 0 <= t.good <= t.excellent <= 100:
        p.fail("tiers", "needs 0 <= good <= excellent <= 100")
    if profile.targets.short_side < 1:
        p.fail("targets.short_side", "must be positive")
    color = profile.enhancement.background_color
    if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
        p.fail("enhancement.background_color", "must be [r, g, b] with 0-255 integers")
    o = profile.outputs
    for name_ in ("jpeg_quality", "webp_quality"):
        if not 1 <= getattr(o, name_) <= 100:
            p.fail(f"outputs.{name_}", "must be 1-100")
    if not 0 <= o.webp_method <= 6:
        p.fail("outputs.webp_method", "must be 0-6")
    if not 64 <= o.thumb_max_side <= o.large_max_side:
        p.fail("outputs", "needs 64 <= thumb_max_side <= large_max_side")
    r = profile.routing
    if r.ai_background_above < r.background_cleanup_above:
        p.fail("routing.ai_background_above", "must be >= background_cleanup_above")
    known_reasons = {"touches_frame", "too_small", "too_large", "fragmented", "unsure_matte",
                     "disagrees", "no_mask"}
    if not set(r.ai_background_reasons) <= known_reasons:
        p.fail("routing.ai_background_reasons", f"known reasons: {sorted(known_reasons)}")
    if r.ai_lighting_deviation_above < r.lighting_deviation_above:
        p.fail("routing.ai_lighting_deviation_above", "must be >= lighting_deviation_above")
    bg = profile.background
    if bg.saturation_density <= 0:
        p.fail("background.saturation_density", "must be > 0")
    if not 0 <= bg.canny_low < bg.canny_high:
        p.fail("background", "needs 0 <= canny_low < canny_high")


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, reason: str) -> None:
        raise ConfigurationError(f"profile {self.source}: {field}: {reason}")

    def string(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            self.fail(key, "required text value")
        return value  # type: ignore[return-value]

    def table(self, data: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            self.fail(prefix + key, "required table is missing")
        return value  # type: ignore[return-value]

    def only(self, data: dict[str, Any], allowed: set[str], prefix: str) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.fail(prefix + unknown[0], "unknown field (a typo?)")

    def rules(self, cls: type, data: dict[str, Any], prefix: str) -> Any:
        """A rules dataclass that checks its own ranges (ValueError -> the field's error)."""
        try:
            return self.build(cls, data, prefix)
        except ValueError as exc:
            self.fail(prefix, str(exc))

    def build(self, cls: type, data: dict[str, Any], prefix: str,
              nested: set[str] | None = None) -> Any:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                self.fail(f"{prefix}.{f.name}", "required field is missing")
            value = data[f.name]
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            if nested and f.name in nested:
                pass
            elif kind == "str":
                if not isinstance(value, str):
                    self.fail(f"{prefix}.{f.name}", f"must be text, not {value!r}")
            elif kind == "list":
                if not isinstance(value, list):
                    self.fail(f"{prefix}.{f.name}", f"must be a list, not {value!r}")
            elif kind == "bool":
                if not isinstance(value, bool):
                    self.fail(f"{prefix}.{f.name}", f"must be true or false, not {value!r}")
            elif kind == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    self.fail(f"{prefix}.{f.name}", f"must be an integer, not {value!r}")
            elif kind == "float":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    self.fail(f"{prefix}.{f.name}", f"must be a number, not {value!r}")
                value = float(value)
            values[f.name] = value
        self.only(data, {f.name for f in fields(cls)}, prefix + ".")
        return cls(**values)
