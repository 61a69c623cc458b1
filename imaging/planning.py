"""The route stage's decision tree (pure): a quality report in, an enhancement plan out.

The seed design's tree, every number from the profile:

* excellent tier -> skip (published as-is);
* noise above ``denoise_above`` -> denoise with the measured sigma;
* brightness deviation > ``ai_lighting_deviation_above`` -> AI lighting, else above
  ``lighting_deviation_above`` -> local HSV correction toward the target;
* contrast (CLAHE on luminance) when the product's contrast is below ``contrast_below``
  (the seed ran it always; on photos with fine contrast it only added grit);
* background complexity above ``background_cleanup_above`` -> replace the background
  with the product's own mask (the step itself leaves the background alone when the mask
  is not trusted); AI background removal only where the local step is expected to fail:
  complexity above ``ai_background_above`` and the assessment's mask untrusted for one
  of ``ai_background_reasons`` (AI by value);
* short side < ``upscale_below`` -> Lanczos to the target short side; AI upscale only
  when the short side is below ``ai_upscale_short_side_below`` and blur below
  ``ai_upscale_blur_below``;
* deblur (a deconvolution sized to the blur the photo shows; nothing on a sharp photo)
  when blur (variance of the Laplacian) is below ``deblur_blur_below``, before contrast
  and any upscale; it replaces the seed's "always sharpen, last", which amplified the
  interpolation and put grit on photos that did not need it.

An AI step names its model and estimated price (model catalog). When the AI path cannot
take it (AI disabled, or later the day's budget is exhausted: :func:`downgrade_ai_steps`),
the step runs its local fallback with ``method = "local"``, the wanted model id kept,
cost 0 and the reason in ``fallback_reason``: the plan's format is the same either way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from imaging.profile import Profile
from services.model_catalog import ModelCatalog

AI_DISABLED = "ai_disabled"


@dataclass(frozen=True)
class PlannedStep:
    order: int
    operation: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None
    estimated_cost_usd: float = 0.0
    fallback_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    skip: bool
    steps: list[PlannedStep]

    @property
    def estimated_cost_usd(self) -> float:
        return round(sum(s.estimated_cost_usd for s in self.steps), 6)


def plan_enhancement(metrics: dict[str, Any], tier: str,
                     subject: dict[str, Any] | list[int] | None,
                     profile: Profile, catalog: ModelCatalog,
                     ai_unavailable_reason: str | None = None) -> Plan:
    """Ordered steps for one assessed photo. ``ai_unavailable_reason=None`` allows AI.

    ``subject`` is the assessment's subject (box and, from profile 2, the product mask's
    verdict); a bare box is accepted from older reports.
    """
    if isinstance(subject, list):
        subject = {"box": subject}
    mask = (subject or {}).get("mask")
    if tier == "excellent":
        return Plan(skip=True, steps=[])
    r, e, t = profile.routing, profile.enhancement, profile.targets
    wanted: list[tuple[str, dict[str, Any], str | None]] = []  # (operation, params, model)

    if metrics["noise"] > r.denoise_above:
        wanted.append(("denoise", {"sigma": round(metrics["noise"], 2)}, None))
    deviation = metrics["brightness_deviation"]
    contrast = metrics["contrast"]
    too_bright = metrics["brightness"] > t.brightness
    if deviation > r.lighting_deviation_above and (r.darken_bright_photos or not too_bright):
        model = r.models.lighting if deviation > r.ai_lighting_deviation_above else None
        wanted.append(("brightness", {"target": t.brightness,
                                      "current": round(metrics["brightness"], 2)}, model or None))
        # The exposure fix scales the gray spread with the tone: judge contrast after it.
        contrast *= t.brightness / max(metrics["brightness"], 1.0)
    if metrics["blur"] < r.deblur_blur_below:
        # Measures the photo's own blur and deconvolves it (nothing on a sharp photo);
        # before contrast, which would otherwise amplify the blur's soft gradients.
        wanted.append(("deblur", {"sigma": 0.0, "strength": 1.0}, None))
    if contrast < r.contrast_below:
        wanted.append(("contrast", {"clip_limit": e.clahe_clip_limit}, None))
    complexity = metrics["background_complexity"]
    if complexity > r.background_cleanup_above:
        local_fails = (isinstance(mask, dict) and not mask.get("confident", True)
                       and mask.get("reason") in r.ai_background_reasons)
        model = r.models.background if complexity > r.ai_background_above and local_fails \
            else None
        params: dict[str, Any] = {"color": list(e.background_color),
                                  "rules": profile.segmentation.as_dict(),
                                  "mask_side": profile.assessment.working_max_side}
        wanted.append(("background", params, model or None))
    short = min(metrics["width"], metrics["height"])
    if short < r.upscale_below:
        model = (r.models.upscale if short < r.ai_upscale_short_side_below
                 and metrics["blur"] < r.ai_upscale_blur_below else None)
        wanted.append(("upscale", {"short_side": t.short_side,
                                   "max_scale": e.upscale_max_scale}, model or None))

    steps = []
    for order, (operation, params, model) in enumerate(wanted):
        if model is None:
            steps.append(PlannedStep(order, operation, "local", params))
            continue
        price = catalog.get(model).price_usd
        if ai_unavailable_reason:
            steps.append(PlannedStep(order, operation, "local", params, model_id=model,
                                     fallback_reason=_not_called(ai_unavailable_reason, model,
                                                                 price)))
        else:
            steps.append(PlannedStep(order, operation, "ai", params, model_id=model,
                                     estimated_cost_usd=price))
    return Plan(skip=False, steps=steps)


def _not_called(reason: str, model: str, price: float) -> str:
    return f"{reason}: {model} (${price:.2f}) not called"


def ai_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in steps if s["method"] == "ai"]


def downgrade_ai_steps(steps: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """The same steps with every AI step turned into its local fallback, reason recorded."""
    return [
        {**s, "method": "local", "estimated_cost_usd": 0.0,
         "fallback_reason": _not_called(reason, s["model_id"], s["estimated_cost_usd"])}
        if s["method"] == "ai" else s
        for s in steps
    ]


def check_routing_models(profile: Profile, catalog: ModelCatalog) -> None:
    """Fail at start when the profile routes an operation to an unknown or retired model."""
    for operation in ("background", "upscale", "lighting"):
        model = getattr(profile.routing.models, operation)
        if model:
            catalog.require_callable(model, operation,
                                     f"profile {profile.name}: routing.models.{operation}")
