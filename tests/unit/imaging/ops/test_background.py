import numpy as np
import pytest

from imaging.errors import PermanentError, StepDeclined
from imaging.ops import apply_operation, background
from imaging.samples import render_product_scene_with_mask
from imaging.similarity import ssim
from tests.unit.imaging.ops import assert_pure_and_deterministic


def _scene(backdrop="grey", product="mug", seed=3):
    return render_product_scene_with_mask(np.random.default_rng(seed), product=product,
                                          background=backdrop, width=480, height=360)


def test_pure_deterministic_uint8_bgr():
    scene, _ = _scene()
    assert_pure_and_deterministic("background", scene, {})


@pytest.mark.parametrize("backdrop", [
    "grey", "white",
    pytest.param("sweep", marks=pytest.mark.xfail(
        strict=True, reason="known: U²-Net-p misses the light handle of a light mug on a "
                            "light sweep (4.5% of the product), and no check catches it")),
])
def test_the_whole_product_stays_and_the_backdrop_becomes_the_fill(backdrop):
    scene, truth = _scene(backdrop)
    out = apply_operation("background", scene, {"color": [200, 10, 30]})
    product, backdrop_px = truth > 0.9, truth < 0.02
    far = np.ones_like(backdrop_px)
    far[60:-60, 60:-60] = False  # the frame's margin, away from shadows and edges
    fill = np.all(np.abs(out.astype(int) - (30, 10, 200)) <= 6, axis=2)
    assert fill[backdrop_px & far].mean() > 0.97  # RGB param, BGR image
    kept = 1.0 - fill[product].mean()
    assert kept >= 0.99, f"only {kept:.1%} of the product's pixels were kept"
    ys, xs = np.nonzero(product)
    crop = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
    inside = product[crop]
    assert np.abs(out[crop][inside].astype(int) - scene[crop][inside]).mean() < 6


def test_a_product_cut_by_the_frame_is_left_alone():
    scene, _ = _scene("grey")
    shifted = np.ascontiguousarray(scene[:, 250:])  # the product now crosses the left edge
    with pytest.raises(StepDeclined) as declined:
        background(shifted)
    assert declined.value.code == "touches_frame"


def test_a_declined_step_is_recorded_and_the_image_goes_on_unchanged():
    from imaging.enhancement import apply_plan

    scene, _ = _scene("grey")
    crop = np.ascontiguousarray(scene[:, 250:])
    result, [step] = apply_plan(crop, [{"order": 0, "operation": "background",
                                        "method": "local", "params": {}}])
    assert step.success and step.details.startswith("declined: ")
    assert ssim(result, crop) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"color": [255, 255]}, "color"),
        ({"color": [0, 0, 300]}, "color"),
        ({"color": "white"}, "color"),
        ({"rules": {"min_area": 2.0}}, "min_area"),
        ({"rules": {"max_piece": 2}}, "unknown mask rules"),
        ({"rules": {"max_unsure": "x"}}, "must be a number"),
        ({"mode": "fast"}, "unknown params"),
    ],
)
def test_bad_params_are_permanent(params, fragment):
    scene, _ = _scene()
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("background", scene, params)


def test_plans_from_profile_1_still_run():
    scene, _ = _scene()
    out = apply_operation("background", scene, {"box": [10, 10, 300, 300], "work_side": 256,
                                                "iterations": 3})
    assert out.shape == scene.shape
