import cv2
import numpy as np
import pytest

from imaging import samples
from imaging.errors import PermanentError
from imaging.ops import OPERATIONS, apply_operation, deblur
from imaging.ops.deblur import estimate_blur_sigma
from imaging.similarity import ssim
from tests.unit.imaging.ops import assert_pure_and_deterministic


def _scene(product: str = "sneaker", background: str = "desk", seed: int = 3) -> np.ndarray:
    return samples.render_product_scene(
        np.random.default_rng(seed), product=product, background=background, width=320,
        height=240,
    )


@pytest.fixture(scope="module")
def sharp() -> np.ndarray:
    return _scene()


@pytest.mark.parametrize("sigma", [1.5, 2.5])
def test_brings_a_blurred_scene_closer_to_the_sharp_one(sharp, sigma):
    blurred = samples.blur(sharp, sigma)
    before = ssim(blurred, sharp)
    estimated = ssim(deblur(blurred), sharp)
    told = ssim(deblur(blurred, sigma=sigma), sharp)
    assert estimated > before + 0.03, (before, estimated)
    assert told > before + 0.03, (before, told)


@pytest.mark.parametrize("product, background", [("sneaker", "desk"), ("mug", "white"),
                                                 ("lamp", "sweep")])
def test_leaves_a_sharp_scene_nearly_unchanged(product, background):
    sharp = _scene(product, background)
    assert estimate_blur_sigma(sharp) < 0.5
    assert ssim(deblur(sharp), sharp) >= 0.98


@pytest.mark.parametrize("product, background", [("mug", "white"), ("lamp", "sweep")])
@pytest.mark.parametrize("sigma", [1.5, 2.5, 3.5])
def test_estimates_the_blur_sigma(product, background, sigma):
    blurred = samples.blur(_scene(product, background), sigma)
    assert estimate_blur_sigma(blurred) == pytest.approx(sigma, abs=0.5)


def test_pure_deterministic_uint8_bgr(sharp):
    blurred = samples.blur(sharp, 2.5)
    assert_pure_and_deterministic("deblur", blurred, {})
    assert_pure_and_deterministic("deblur", blurred, {"sigma": 2.0, "strength": 0.5})


def test_direct_call_matches_registry(sharp):
    blurred = samples.blur(sharp, 2.0)
    assert np.array_equal(deblur(blurred, sigma=2.0),
                          OPERATIONS["deblur"](blurred, {"sigma": 2.0}))


def test_changes_luma_only_and_strength_scales_the_change(sharp):
    blurred = samples.blur(sharp, 2.5)
    out = deblur(blurred, sigma=2.5)
    full = out.astype(int) - blurred.astype(int)
    half = deblur(blurred, sigma=2.5, strength=0.5).astype(int) - blurred.astype(int)
    inside = np.all((out > 0) & (out < 255), axis=2)  # not saturated
    assert np.abs(full[inside]).mean() > 1.0
    # the same delta on B, G and R, up to rounding: chroma untouched
    assert np.ptp(full[inside], axis=1).max() <= 1
    assert np.abs(half[inside]).mean() < 0.6 * np.abs(full[inside]).mean()
    assert np.array_equal(deblur(blurred, sigma=2.5, strength=0.0), blurred)


def test_does_not_amplify_noise_on_a_flat_frame():
    rng = np.random.default_rng(5)
    flat = np.clip(128 + rng.normal(0, 2.0, (200, 200, 1)) + np.zeros(3), 0, 255)
    flat = flat.astype(np.uint8)
    out = deblur(flat, sigma=2.5)
    gray = cv2.cvtColor(flat, cv2.COLOR_BGR2GRAY).astype(float)
    assert cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).astype(float).std() < 1.5 * gray.std()
    assert np.array_equal(deblur(flat), flat)  # no edges: nothing to measure, unchanged


def test_tiny_images_pass_through():
    tiny = np.full((5, 7, 3), 100, np.uint8)
    assert np.array_equal(deblur(tiny), tiny)
    assert estimate_blur_sigma(tiny) == 0.0


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"sigma": -1}, "sigma"),
        ({"sigma": 20}, "sigma"),
        ({"strength": -0.1}, "strength"),
        ({"strength": 3}, "strength"),
        ({"sigma": "auto"}, "sigma"),
        ({"radius": 2}, "unknown params"),
    ],
)
def test_bad_params_are_permanent(sharp, params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("deblur", sharp, params)


def test_bad_params_raise_value_error_when_called_directly(sharp):
    with pytest.raises(ValueError, match="sigma"):
        deblur(sharp, sigma=-0.5)
    with pytest.raises(ValueError, match="strength"):
        deblur(sharp, strength=2.5)
