import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.ops import apply_operation, brightness
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)


def _mean_gray(bgr: np.ndarray) -> float:
    return float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).mean())


def test_matches_golden_output():
    assert_matches_golden("brightness")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("brightness")
    assert_pure_and_deterministic("brightness", case.input, case.params)


def test_moves_a_dark_photo_toward_the_target():
    dark = golden_case("brightness").input
    before = _mean_gray(dark)
    out = apply_operation("brightness", dark, {"target": 128})
    assert abs(_mean_gray(out) - 128) < abs(before - 128) / 2


def test_darkens_an_overexposed_photo_without_clipping_more():
    clean = golden_case("brightness").clean
    bright = np.clip(clean.astype(np.float32) * 1.4 + 30, 0, 255).astype(np.uint8)
    out = brightness(bright, target=110)
    assert abs(_mean_gray(out) - 110) < abs(_mean_gray(bright) - 110)
    assert (out == 255).sum() <= (bright == 255).sum()


def test_highlights_are_not_clipped_when_brightening():
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = 30
    image[:, 32:] = (180, 200, 230)
    out = brightness(image, target=128, max_gain=2.5)
    assert out[0, 0, 0] > 30
    assert out[0, 40].max() < 255  # a bright patch gets brighter but keeps headroom
    assert np.all(np.diff(out[0, :, 2].astype(int)[[0, 40]]) > 0)


def test_gain_is_capped_and_current_is_honoured():
    dark = golden_case("brightness").input
    capped = brightness(dark, target=200, max_gain=1.2)
    free = brightness(dark, target=200, max_gain=4.0)
    assert _mean_gray(dark) < _mean_gray(capped) < _mean_gray(free)
    # told the photo is already at the target: nothing to do
    assert np.array_equal(brightness(dark, target=128, current=128.0), dark)


def test_hue_is_kept():
    patch = np.full((8, 8, 3), (20, 40, 80), np.uint8)
    out = brightness(patch, target=128)
    assert out[0, 0, 2] > 80
    ratio_in = patch[0, 0].astype(float) / patch[0, 0, 2]
    ratio_out = out[0, 0].astype(float) / out[0, 0, 2]
    assert np.allclose(ratio_in, ratio_out, atol=0.03)


@pytest.mark.parametrize(
    "params, fragment",
    [({"target": 300}, "target"), ({"max_gain": 0.5}, "max_gain"),
     ({"current": "dark"}, "current"), ({"current": -1}, "current"),
     ({"gamma": 2}, "unknown params")],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("brightness", golden_case("brightness").input, params)
