import dataclasses

import pytest

from imaging.errors import ConfigurationError
from imaging.planning import ai_steps, check_routing_models, downgrade_ai_steps, plan_enhancement
from profiles import load_profile
from services.model_catalog import load_catalog

PROFILE = load_profile("default")
CATALOG = load_catalog()
CLEAN = dict(noise=0.5, brightness=128.0, brightness_deviation=0.0, background_complexity=0.05,
             width=1200, height=1200, blur=500.0, contrast=50.0)


def _ops(plan):
    return [(s.operation, s.method) for s in plan.steps]


def test_excellent_photos_are_skipped():
    plan = plan_enhancement(CLEAN, "excellent", None, PROFILE, CATALOG)
    assert plan.skip and plan.steps == []


def test_a_photo_that_needs_nothing_gets_nothing():
    plan = plan_enhancement(CLEAN, "good", None, PROFILE, CATALOG)
    assert plan.steps == [] and not plan.skip


def test_deblur_and_contrast_only_where_measured_and_before_the_upscale():
    metrics = {**CLEAN, "contrast": 20.0, "blur": 80.0, "width": 500, "height": 400}
    plan = plan_enhancement(metrics, "poor", None, PROFILE, CATALOG)
    assert _ops(plan) == [("deblur", "local"), ("contrast", "local"), ("upscale", "local")]
    assert [s.order for s in plan.steps] == [0, 1, 2]


UNSURE = {"box": [10, 20, 300, 400],
          "mask": {"method": "model", "confident": False, "reason": "fragmented"}}


@pytest.mark.parametrize("change,operation,model", [
    (dict(background_complexity=0.7), "background",
     "stability.stable-image-remove-background-v1:0"),
    (dict(background_complexity=0.3), "background", None),
    (dict(width=250, height=300, blur=50.0), "upscale", "stability.stable-fast-upscale-v1:0"),
    (dict(width=500, height=600, blur=50.0), "upscale", None),  # Lanczos is enough
    (dict(width=250, height=300, blur=500.0), "upscale", None),
    (dict(brightness=60.0, brightness_deviation=68.0), "brightness", None),  # no AI lighting
    (dict(brightness=100.0, brightness_deviation=28.0), "brightness", None),
    (dict(noise=6.0), "denoise", None),
])
def test_seed_decision_tree(change, operation, model):
    plan = plan_enhancement({**CLEAN, **change}, "poor", UNSURE, PROFILE, CATALOG,
                            ai_unavailable_reason="ai_disabled")
    [step] = [s for s in plan.steps if s.operation == operation]
    assert step.model_id == model
    assert step.method == "local"
    if model:
        assert step.fallback_reason.startswith("ai_disabled: " + model)
        assert step.estimated_cost_usd == 0
    else:
        assert step.fallback_reason is None
    allowed = plan_enhancement({**CLEAN, **change}, "poor", UNSURE, PROFILE, CATALOG)
    [step] = [s for s in allowed.steps if s.operation == operation]
    assert step.method == ("ai" if model else "local")


@pytest.mark.parametrize("mask, model", [
    ({"method": "model", "confident": True, "reason": None}, None),  # local will do
    ({"method": "model", "confident": False, "reason": "touches_frame"}, None),  # AI can't help
    ({"method": "model", "confident": False, "reason": "unsure_matte"},
     "stability.stable-image-remove-background-v1:0"),
    (None, None),  # reports from profile 1.x carry no mask verdict
])
def test_paid_background_removal_only_where_the_local_mask_is_expected_to_fail(mask, model):
    metrics = {**CLEAN, "background_complexity": 0.9}
    subject = {"box": [0, 0, 10, 10], **({"mask": mask} if mask else {})}
    [step] = [s for s in plan_enhancement(metrics, "poor", subject, PROFILE, CATALOG).steps
              if s.operation == "background"]
    assert step.model_id == model
    assert step.method == ("ai" if model else "local")
    assert step.params["rules"] == PROFILE.segmentation.as_dict()


def test_downgrade_turns_ai_steps_into_their_local_fallback():
    metrics = {**CLEAN, "background_complexity": 0.7, "width": 250, "height": 300, "blur": 20.0}
    steps = [s.as_dict() for s in plan_enhancement(metrics, "poor", UNSURE, PROFILE,
                                                   CATALOG).steps]
    downgraded = downgrade_ai_steps(steps, "budget_exhausted: $0 left")
    assert [s["operation"] for s in downgraded] == [s["operation"] for s in steps]
    assert all(s["method"] == "local" and s["estimated_cost_usd"] == 0 for s in downgraded)
    changed = [s for s in downgraded if s["fallback_reason"]]
    assert {s["operation"] for s in changed} == {"background", "upscale"}
    assert all(s["fallback_reason"].startswith("budget_exhausted: $0 left: stability.")
               for s in changed)
    assert ai_steps(downgraded) == [] and len(ai_steps(steps)) == 2


def test_ai_steps_carry_price_when_ai_is_available():
    metrics = {**CLEAN, "background_complexity": 0.7, "width": 250, "height": 300, "blur": 20.0}
    plan = plan_enhancement(metrics, "poor", UNSURE, PROFILE, CATALOG,
                            ai_unavailable_reason=None)
    ai = {s.operation: s for s in plan.steps if s.method == "ai"}
    assert ai["background"].estimated_cost_usd == 0.07
    assert ai["upscale"].estimated_cost_usd == 0.03
    assert plan.estimated_cost_usd == pytest.approx(0.10)


def test_thresholds_come_from_the_profile():
    strict = dataclasses.replace(PROFILE, routing=dataclasses.replace(
        PROFILE.routing, upscale_below=1500.0))
    plan = plan_enhancement(CLEAN, "good", None, strict, CATALOG)
    assert "upscale" in [s.operation for s in plan.steps]


def test_retired_or_unknown_models_fail_at_start():
    retired = dataclasses.replace(PROFILE, routing=dataclasses.replace(
        PROFILE.routing, models=dataclasses.replace(PROFILE.routing.models,
                                                    lighting="amazon.nova-canvas-v1:0")))
    with pytest.raises(ConfigurationError, match="retired since 2026-09-30"):
        check_routing_models(retired, CATALOG)
    unknown = dataclasses.replace(PROFILE, routing=dataclasses.replace(
        PROFILE.routing, models=dataclasses.replace(PROFILE.routing.models, upscale="x.y")))
    with pytest.raises(ConfigurationError, match="not in the model catalog"):
        check_routing_models(unknown, CATALOG)
    check_routing_models(PROFILE, CATALOG)


def test_exposure_is_fixed_upwards_only_unless_the_profile_says():
    dark = {**CLEAN, "brightness": 90.0, "brightness_deviation": 38.0}
    light = {**CLEAN, "brightness": 190.0, "brightness_deviation": 62.0}  # a grey tee, high key
    assert ("brightness", "local") in _ops(plan_enhancement(dark, "good", None, PROFILE, CATALOG))
    assert _ops(plan_enhancement(light, "good", None, PROFILE, CATALOG)) == []
    darkening = dataclasses.replace(
        PROFILE, routing=dataclasses.replace(PROFILE.routing, darken_bright_photos=True,
                                             ai_lighting_deviation_above=100.0))
    assert ("brightness", "local") in _ops(plan_enhancement(light, "good", None, darkening,
                                                            CATALOG))
