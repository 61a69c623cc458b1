import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.ops import apply_operation, contrast
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)


def _gray_std(bgr: np.ndarray) -> float:
    return float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).std())


def test_matches_golden_output():
    assert_matches_golden("contrast")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("contrast")
    assert_pure_and_deterministic("contrast", case.input, case.params)


def test_raises_gray_spread_of_a_flat_photo():
    # Plain CLAHE (smooth_std=0); the default also spares plain areas' texture, which is
    # most of this photo's spread (tests/unit/imaging/ops/test_clahe_smooth.py).
    flat = golden_case("contrast").input
    out = apply_operation("contrast", flat, {"smooth_std": 0.0})
    assert _gray_std(out) > 1.1 * _gray_std(flat)
    stronger = contrast(flat, clip_limit=4.0, smooth_std=0.0)
    assert _gray_std(stronger) > _gray_std(out)


def test_keeps_neutral_grays_neutral():
    ramp = np.repeat(np.linspace(90, 160, 128, dtype=np.float32)[None, :], 96, axis=0)
    gray = np.dstack([ramp] * 3).astype(np.uint8)
    out = contrast(gray).astype(int)
    assert np.abs(out[..., 0] - out[..., 2]).max() <= 2


@pytest.mark.parametrize(
    "params, fragment",
    [({"clip_limit": 0}, "clip_limit"), ({"tile_grid": 0}, "tile_grid"),
     ({"tile_grid": "8x8"}, "integer"), ({"tiles": 8}, "unknown params")],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("contrast", golden_case("contrast").input, params)
