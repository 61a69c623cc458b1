import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from imaging.similarity import psnr, ssim, to_luma

SHARED = Path(__file__).resolve().parents[4] / "shared"
CALIBRATION = SHARED / "calibration" / "brisque"


def _rows() -> list[dict[str, str]]:
    reference = CALIBRATION / "reference.csv"
    if not reference.is_file():
        return []
    with reference.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    dist = cv2.imread(str(CALIBRATION / "dist" / name), cv2.IMREAD_COLOR)
    ref = cv2.imread(str(CALIBRATION / "ref" / name), cv2.IMREAD_COLOR)
    assert dist is not None and ref is not None
    return dist, ref


needs_calibration = pytest.mark.skipif(
    not _rows(), reason=f"calibration set not available under {CALIBRATION}"
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 2)
    return cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)


def test_identical_images(photo):
    assert ssim(photo, photo) == pytest.approx(1.0)
    assert psnr(photo, photo) == math.inf
    assert psnr(photo, photo, channels="rgb") == math.inf


def test_known_psnr_of_a_constant_offset():
    a = np.full((32, 32), 100, np.uint8)
    assert psnr(a, a + 5) == pytest.approx(10 * math.log10(255**2 / 25))


def test_ssim_is_symmetric_and_falls_with_distortion(photo):
    rng = np.random.default_rng(5)
    mild = np.clip(photo + rng.normal(0, 4, photo.shape), 0, 255).astype(np.uint8)
    strong = np.clip(photo + rng.normal(0, 25, photo.shape), 0, 255).astype(np.uint8)
    assert ssim(photo, mild) == pytest.approx(ssim(mild, photo))
    assert 1.0 > ssim(photo, mild) > ssim(photo, strong) > 0.0
    assert psnr(photo, mild) > psnr(photo, strong)


def test_matches_a_direct_windowed_computation():
    """The GaussianBlur-and-crop path equals SSIM summed window by window ('valid' mode)."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (16, 18), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    k = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F)
    w = k @ k.T
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = a.astype(float), b.astype(float)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
            cov = (w * px * py).sum() - mx * my
            cs = max((2 * cov + c2) / (vx + vy + c2), 0.0)
            values.append((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs)
    assert ssim(a, b) == pytest.approx(float(np.mean(values)), abs=1e-9)


def test_luma_conventions():
    white_red = np.array([[[255, 255, 255], [0, 0, 255]]], np.uint8)  # BGR
    assert to_luma(white_red).tolist() == [[255.0, 76.0]]
    assert to_luma(white_red, "ycbcr").tolist() == [[235.0, 81.0]]
    with pytest.raises(ValueError):
        to_luma(white_red, "lab")  # type: ignore[arg-type]


def test_shape_mismatch_is_an_error(photo):
    with pytest.raises(ValueError, match="shape"):
        ssim(photo, photo[:-1])
    with pytest.raises(ValueError, match="shape"):
        psnr(photo, photo[:, :-1])


def test_tiny_images_still_work():
    a = np.full((6, 6, 3), 120, np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)


@needs_calibration
@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["image"])
def test_ssim_reproduces_published_values(row):
    dist, ref = _pair(row["image"])
    assert ssim(dist, ref) == pytest.approx(float(row["ssim_vs_ref"]), abs=0.005)


@needs_calibration
@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["image"])
def test_psnr_reproduces_published_values_over_rgb(row):
    dist, ref = _pair(row["image"])
    assert psnr(dist, ref, channels="rgb") == pytest.approx(float(row["psnr_vs_ref"]), abs=0.05)


@needs_calibration
def test_matlab_ycbcr_luma_does_not_reproduce_the_published_ssim():
    """Guards the calibration finding: pyiqa's Y has no +16 studio offset."""
    dist, ref = _pair("I03.bmp")
    published = float(next(r for r in _rows() if r["image"] == "I03.bmp")["ssim_vs_ref"])
    assert abs(ssim(dist, ref, luma="ycbcr") - published) > 0.02
