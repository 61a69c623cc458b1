"""BRISQUE must match pyiqa's published values and rank degraded photos below their originals.

The calibration images and seller photos live in the shared folder next to the repository
(never copied into it); tests that need them skip cleanly when it is absent. The comparison
with pyiqa itself runs only where pyiqa and torch are installed (the ``pyiqa`` extra).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from imaging.brisque import MIN_SIDE, N_FEATURES, brisque_features, brisque_score
from imaging.samples import darken, plan_sample_batch, render_sample
from tests.shared_files import shared_dir

U8 = npt.NDArray[np.uint8]


SHARED = shared_dir()
CALIBRATION = SHARED / "calibration" / "brisque" if SHARED else None
SELLERS = SHARED / "images" / "sellers" if SHARED else None
# Two seller photos on which every degradation below visibly raises BRISQUE.
SELLER_REFS = (
    "dress/07cddef1-1fc8-47e4-a28a-613e60912590.jpg",
    "hat/014b2a1b-c5a0-469b-b115-bc02b2001db5.jpg",
)
CALIBRATION_TOLERANCE = 0.1
# Measured against pyiqa 0.1.16 on 20 seller photos: max |diff| 0.005; ten times that as bound.
SELLER_TOLERANCE = 0.05

needs_shared = pytest.mark.skipif(CALIBRATION is None, reason="shared folder absent")


def _reference_rows() -> list[tuple[str, float]]:
    if CALIBRATION is None or not (CALIBRATION / "reference.csv").is_file():
        return []
    with (CALIBRATION / "reference.csv").open(newline="") as fh:
        return [(row["image"], float(row["brisque_pyiqa"])) for row in csv.DictReader(fh)]


def _read(path: Path) -> U8:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot decode {path}"
    return image


def _seller_photos(count: int) -> list[Path]:
    if SELLERS is None or not SELLERS.is_dir():
        return []
    photos = sorted(SELLERS.glob("*/*.jpg"))
    return photos[:: max(1, len(photos) // count)][:count]


def _jpeg(image: U8, quality: int) -> U8:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _noisy(image: U8) -> U8:
    rng = np.random.default_rng(1)
    return np.clip(image + rng.normal(0.0, 20.0, image.shape), 0, 255).astype(np.uint8)


DEGRADATIONS: dict[str, Callable[[U8], U8]] = {
    "gaussian_blur": lambda im: cv2.GaussianBlur(im, (0, 0), 3.0),
    "gaussian_noise": _noisy,
    "jpeg_q10": lambda im: _jpeg(im, 10),
    "darkened": darken,
}


def _sharp_references() -> list[object]:
    """A synthetic studio shot always; calibration references and seller photos when shared."""
    refs = [pytest.param("sample:mug-plain-sharp", id="sample-mug-plain-sharp")]
    if CALIBRATION is not None:
        refs += [
            pytest.param(str(p), id=f"ref-{p.stem}") for p in sorted(CALIBRATION.glob("ref/*.bmp"))
        ]
    if SELLERS is not None:
        refs += [
            pytest.param(str(SELLERS / name), id=f"seller-{Path(name).stem[:8]}")
            for name in SELLER_REFS
            if (SELLERS / name).is_file()
        ]
    return refs


def _load_reference(source: str) -> U8:
    if source.startswith("sample:"):
        spec = next(s for s in plan_sample_batch() if s.name.startswith(source[7:]))
        return render_sample(spec)
    return _read(Path(source))


@needs_shared
@pytest.mark.parametrize(("name", "expected"), _reference_rows() or [("none", 0.0)])
def test_calibration_matches_pyiqa_published_values(name: str, expected: float) -> None:
    if name == "none":
        pytest.skip("reference.csv absent")
    score = brisque_score(_read(CALIBRATION / "dist" / name))
    assert abs(score - expected) <= CALIBRATION_TOLERANCE, f"{name}: {score:.4f} vs {expected}"


@pytest.mark.parametrize("source", _sharp_references())
@pytest.mark.parametrize("degradation", list(DEGRADATIONS))
def test_degradations_score_worse(source: str, degradation: str) -> None:
    original = _load_reference(source)
    base = brisque_score(original)
    worse = brisque_score(DEGRADATIONS[degradation](original))
    assert worse > base, f"{degradation}: {worse:.2f} not above original {base:.2f}"


@pytest.fixture(scope="module")
def photo() -> U8:
    spec = next(s for s in plan_sample_batch() if s.name.startswith("box-wood-cluttered"))
    return render_sample(spec)


def test_gray_input_matches_the_same_picture_in_bgr(photo: U8) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    as_bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert brisque_score(gray) == brisque_score(as_bgr)
    assert brisque_score(gray[:, :, None]) == brisque_score(gray)


def test_alpha_channel_is_ignored(photo: U8) -> None:
    bgra = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    assert brisque_score(bgra) == brisque_score(photo)


def test_features_shape_and_determinism(photo: U8) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    feats = brisque_features(gray)
    assert feats.shape == (N_FEATURES,)
    assert feats.dtype == np.float64
    assert np.all(np.isfinite(feats))
    assert np.array_equal(feats, brisque_features(gray.astype(np.float32)))
    # GGD and AGGD shape parameters come from the 0.2..10 grid.
    shapes = feats[[0, 2, 6, 10, 14, 18, 20, 24, 28, 32]]
    assert np.all((shapes >= 0.2) & (shapes <= 10.0))


@pytest.mark.parametrize("shape", [(MIN_SIDE, MIN_SIDE), (37, 61), (301, 17)])
def test_odd_and_small_sizes(photo: U8, shape: tuple[int, int]) -> None:
    crop = np.ascontiguousarray(photo[100 : 100 + shape[0], 100 : 100 + shape[1]])
    assert np.isfinite(brisque_score(crop))


def test_rejects_flat_tiny_and_malformed_input() -> None:
    with pytest.raises(ValueError, match="flat"):
        brisque_score(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="too small"):
        brisque_score(np.zeros((MIN_SIDE - 1, 64), np.uint8))
    with pytest.raises(ValueError):
        brisque_score(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError):
        brisque_features(np.zeros((64, 64, 3), np.uint8))


# --------------------------------------------------------------------- against pyiqa itself


@pytest.fixture(scope="module")
def pyiqa_score() -> Callable[[U8], float]:
    pytest.importorskip("torch")
    pytest.importorskip("pyiqa")
    from imaging.brisque_pyiqa import brisque_score as reference

    return reference


@needs_shared
def test_matches_pyiqa_on_calibration_images(pyiqa_score: Callable[[U8], float]) -> None:
    diffs = {}
    for path in sorted((CALIBRATION / "dist").glob("*.bmp")):
        image = _read(path)
        diffs[path.name] = brisque_score(image) - pyiqa_score(image)
    print("calibration ours - pyiqa:", {k: round(v, 4) for k, v in diffs.items()})
    assert diffs
    assert max(abs(d) for d in diffs.values()) <= CALIBRATION_TOLERANCE


@needs_shared
def test_matches_pyiqa_on_seller_photos(
    pyiqa_score: Callable[[U8], float], record_property: Callable[[str, object], None]
) -> None:
    photos = _seller_photos(20)
    if not photos:
        pytest.skip("seller photos absent")
    diffs = np.array([brisque_score(im) - pyiqa_score(im) for im in map(_read, photos)])
    abs_diffs = np.abs(diffs)
    summary = (
        f"{len(diffs)} seller photos, ours - pyiqa: max |d| {abs_diffs.max():.4f}, "
        f"mean |d| {abs_diffs.mean():.4f}, mean d {diffs.mean():+.4f}"
    )
    print(summary)
    record_property("brisque_vs_pyiqa_sellers", summary)
    assert abs_diffs.max() <= SELLER_TOLERANCE, summary


def test_pyiqa_backend_accepts_an_explicit_weights_file(
    pyiqa_score: Callable[[U8], float], photo: U8, tmp_path: Path
) -> None:
    from imaging.brisque_pyiqa import brisque_score as reference
    from imaging.brisque_pyiqa import write_pyiqa_weights

    pth = write_pyiqa_weights(tmp_path / "weights.pth")
    assert reference(photo, pth_path=pth) == pytest.approx(pyiqa_score(photo), abs=1e-6)
