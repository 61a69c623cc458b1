import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.metrics import noise_sigma
from imaging.ops import apply_operation, denoise
from imaging.samples import add_noise, render_product_scene
from imaging.similarity import psnr, ssim
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)


def _sigma(bgr: np.ndarray) -> float:
    return noise_sigma(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


def test_matches_golden_output():
    assert_matches_golden("denoise")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("denoise")
    assert_pure_and_deterministic("denoise", case.input, case.params)


def test_lowers_noise_and_raises_psnr_against_the_clean_scene():
    case = golden_case("denoise")
    out = apply_operation("denoise", case.input, case.params)
    assert _sigma(out) < 0.5 * _sigma(case.input)
    assert psnr(out, case.clean) > psnr(case.input, case.clean) + 3.0
    assert ssim(out, case.clean) > ssim(case.input, case.clean)


@pytest.mark.parametrize("sigma", [5.0, 10.0, 15.0])
def test_estimated_sigma_default_helps_at_every_level(sigma):
    rng = np.random.default_rng(11)
    clean = render_product_scene(rng, product="sneaker", background="sweep", width=240,
                                 height=200)
    noisy = add_noise(clean, rng, sigma)
    out = denoise(noisy)  # sigma estimated from the image itself
    assert psnr(out, clean) > psnr(noisy, clean) + 1.5
    assert _sigma(out) < _sigma(noisy)


def test_does_nothing_below_one_gray_level():
    image = golden_case("denoise").input
    assert np.array_equal(apply_operation("denoise", image, {"sigma": 0.5}), image)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"sigma": -3}, "sigma"),
        ({"sigma": "high"}, "sigma"),
        ({"radius": 2.5}, "integer"),
        ({"radius": 0}, "radius"),
        ({"h": 10}, "unknown params"),
    ],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("denoise", golden_case("denoise").input, params)
