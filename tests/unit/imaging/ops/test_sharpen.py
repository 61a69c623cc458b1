import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.metrics import laplacian_variance
from imaging.ops import OPERATIONS, apply_operation, sharpen
from tests.unit.imaging.ops import (
    assert_matches_golden,
    assert_pure_and_deterministic,
    golden_case,
)


def _gray(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def test_matches_golden_output():
    assert_matches_golden("sharpen")


def test_pure_deterministic_uint8_bgr():
    case = golden_case("sharpen")
    assert_pure_and_deterministic("sharpen", case.input, case.params)


def test_raises_laplacian_variance_of_a_blurred_photo():
    blurred = golden_case("sharpen").input
    out = apply_operation("sharpen", blurred, {})
    assert laplacian_variance(_gray(out)) > 1.3 * laplacian_variance(_gray(blurred))


def test_threshold_leaves_flat_areas_alone_and_changes_luma_only():
    flat = np.full((64, 64, 3), (90, 130, 170), np.uint8)
    flat[32:, :] = (60, 100, 140)
    out = sharpen(flat, amount=1.0, radius=1.5, threshold=2.0)
    assert np.array_equal(out[:20], flat[:20])  # far from the edge: detail below threshold
    diff = out.astype(int) - flat.astype(int)
    changed = np.any(diff != 0, axis=2)
    assert changed.any()
    # the same delta on B, G and R (no clipping here): chroma untouched
    assert np.all(np.ptp(diff[changed], axis=1) == 0)


def test_direct_call_matches_registry():
    case = golden_case("sharpen")
    assert np.array_equal(sharpen(case.input, **case.params),
                          OPERATIONS["sharpen"](case.input, case.params))


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"amount": -1}, "amount"),
        ({"radius": 0}, "radius"),
        ({"amount": "lots"}, "amount"),
        ({"strength": 2}, "unknown params"),
    ],
)
def test_bad_params_are_permanent(params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("sharpen", golden_case("sharpen").input, params)


def test_unknown_operation_and_bad_image_are_permanent():
    image = golden_case("sharpen").input
    with pytest.raises(PermanentError, match="unknown operation 'vignette'"):
        apply_operation("vignette", image, {})
    with pytest.raises(PermanentError, match="BGR uint8"):
        apply_operation("sharpen", image.astype(np.float32), {})
    with pytest.raises(PermanentError, match="BGR uint8"):
        apply_operation("sharpen", image[..., 0], {})
    with pytest.raises(PermanentError, match="mapping"):
        apply_operation("sharpen", image, [("amount", 1.0)])  # type: ignore[arg-type]
