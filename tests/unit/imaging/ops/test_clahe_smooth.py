import cv2
import numpy as np
import pytest

from imaging.errors import PermanentError
from imaging.ops import apply_operation, contrast
from tests.unit.imaging.ops import assert_pure_and_deterministic


def _local_std(bgr: np.ndarray, window: int = 9) -> np.ndarray:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (window, window))
    return np.sqrt(np.maximum(cv2.blur(gray * gray, (window, window)) - mean * mean, 0))


def _scene() -> np.ndarray:
    """Left half: a plain wall, a smooth ramp with a faint (1.2 level) texture.
    Right half: a low-contrast textured object (blobs of +-10 levels)."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = 110.0 + 30.0 * xx / w + 1.2 * np.sin(xx / 1.7) * np.cos(yy / 2.3)
    rng = np.random.default_rng(11)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    cloth = 120.0 + 10.0 * blobs / blobs.std()
    gray = np.where(xx < w // 2, wall, cloth)
    bgr = np.dstack([gray * 0.95, gray, gray * 1.05])
    return np.clip(bgr + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return _scene()


# away from the borders and from the seam between the two halves
WALL = (slice(20, -20), slice(20, 140))
CLOTH = (slice(20, -20), slice(180, -20))


def test_keeps_the_texture_of_a_plain_ramp(scene):
    before = _local_std(scene)[WALL]
    after = _local_std(contrast(scene))[WALL]
    assert (after - before).max() <= 1.0
    assert (after - before).mean() <= 0.3
    # plain CLAHE does mottle it: the test would notice a regression
    old = _local_std(contrast(scene, smooth_std=0.0))[WALL]
    assert (old - before).mean() > 1.0


def test_still_raises_local_contrast_of_low_contrast_texture(scene):
    before = _local_std(scene)[CLOTH].mean()
    after = _local_std(contrast(scene))[CLOTH].mean()
    old = _local_std(contrast(scene, smooth_std=0.0))[CLOTH].mean()
    assert after > 1.3 * before
    assert after > 0.9 * old


def test_no_seam_between_plain_and_textured_parts(scene):
    """The blend weight is smooth: the large-scale brightness of the wall row has no step."""
    out = cv2.cvtColor(contrast(scene), cv2.COLOR_BGR2GRAY).astype(np.float32)
    row = cv2.GaussianBlur(out, (0, 0), 3.0)[120, 20:150]
    assert np.abs(np.diff(row)).max() < 1.5


def test_smooth_std_zero_is_plain_clahe(scene):
    lab = cv2.cvtColor(scene, cv2.COLOR_BGR2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    assert np.array_equal(contrast(scene, smooth_std=0.0), cv2.cvtColor(lab, cv2.COLOR_LAB2BGR))


def test_pure_deterministic_uint8_bgr(scene):
    assert_pure_and_deterministic("contrast", scene, {"smooth_std": 3.0})


@pytest.mark.parametrize("params, fragment",
                         [({"smooth_std": -1}, "smooth_std"), ({"smooth_std": 80}, "smooth_std"),
                          ({"smooth_std": "low"}, "smooth_std")])
def test_bad_smooth_std_is_permanent(scene, params, fragment):
    with pytest.raises(PermanentError, match=fragment):
        apply_operation("contrast", scene, params)
