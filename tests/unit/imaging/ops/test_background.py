import numpy as np
import pytest

from imaging.ops import apply_operation, background
from imaging.similarity import ssim
from streams.errors import PermanentError
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)

BOX = [38, 40, 126, 119]


def test_matches_golden_output():
    assert_matches_golden("background")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("background")
    assert_pure_and_deterministic("background", case.input, case.params)


def test_border_becomes_the_requested_colour_and_the_product_stays():
    cluttered = golden_case("background").input
    out = apply_operation("background", cluttered, {"box": BOX, "color": [200, 10, 30]})
    margin = 6  # beyond the feathered edge
    outside = np.ones(cluttered.shape[:2], bool)
    outside[BOX[1] - margin:, BOX[0] - margin:BOX[2] + margin] = False
    assert np.all(out[outside] == (30, 10, 200))  # RGB param, BGR image
    x0, y0, x1, y1 = 60, 60, 100, 100  # inside the product box
    assert ssim(out[y0:y1, x0:x1], cluttered[y0:y1, x0:x1]) > 0.9


def test_default_box_and_white_fill_on_a_full_size_frame():
    cluttered = golden_case("background").input
    big = np.ascontiguousarray(np.repeat(np.repeat(cluttered, 5, axis=0), 5, axis=1))
    out = background(big, work_side=256)  # reduced copy, mask scaled back to 800x600
    assert out.shape == big.shape
    assert np.all(out[:10, :] == 255) and np.all(out[:, :10] == 255)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"box": [10, 10, 5, 5]}, "box"),
        ({"box": [0, 0, 50]}, "box"),
        ({"color": [255, 255]}, "color"),
        ({"color": [0, 0, 300]}, "color"),
        ({"color": "white"}, "color"),
        ({"work_side": 10}, "work_side"),
        ({"mode": "fast"}, "unknown params"),
    ],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("background", golden_case("background").input, params)
