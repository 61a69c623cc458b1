import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.metrics import laplacian_variance
from imaging.ops import apply_operation, upscale
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)


def test_matches_golden_output():
    assert_matches_golden("upscale")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("upscale")
    assert_pure_and_deterministic("upscale", case.input, case.params, shape=(225, 300, 3))


@pytest.mark.parametrize(
    "size, params, expected",
    [
        ((100, 75), {"short_side": 300}, (400, 300)),  # landscape, 4x
        ((75, 100), {"short_side": 300}, (300, 400)),  # portrait
        ((100, 75), {}, (400, 300)),  # default 1000 capped at max_scale 4
        ((100, 75), {"short_side": 1000, "max_scale": 2}, (200, 150)),
        ((330, 200), {"short_side": 500}, (825, 500)),
        ((1200, 1000), {}, (1200, 1000)),  # large enough: never downscaled
        ((2000, 900), {"short_side": 600}, (2000, 900)),
    ],
)
def test_reaches_short_side_with_the_aspect_and_never_downscales(size, params, expected):
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    out = upscale(image, **params)
    assert (out.shape[1], out.shape[0]) == expected
    assert out.dtype == np.uint8


def test_output_is_smooth_not_blocky():
    small = golden_case("upscale").input
    out = apply_operation("upscale", small, {"short_side": 225})
    nearest = cv2.resize(small, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_NEAREST)
    gray = cv2.COLOR_BGR2GRAY
    assert laplacian_variance(cv2.cvtColor(out, gray)) < laplacian_variance(
        cv2.cvtColor(nearest, gray))


@pytest.mark.parametrize(
    "params, fragment",
    [({"short_side": 0}, "short_side"), ({"short_side": 99.5}, "integer"),
     ({"max_scale": 0.5}, "max_scale"), ({"method": "esrgan"}, "unknown params")],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("upscale", golden_case("upscale").input, params)
