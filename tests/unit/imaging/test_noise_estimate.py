"""noise_sigma on JPEG photos: known Gaussian noise added, saved at q70-95, read back.

Every image is generated here: a cluttered product scene (``imaging.samples``) and a
strongly textured garment drawn with numpy (twill, fine knit, 1-px pinstripes and print dots
over folds, beside a smooth backdrop strip). The noise is one draw added equally to B, G and
R, so its sigma in gray levels is the sigma added; the same draw is scaled for every sigma.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest

from imaging.metrics import noise_sigma
from imaging.samples import render_product_scene
from profiles import load_profile

SIGMAS = (0, 3, 6, 9, 12, 16)
QUALITIES = (70, 80, 90, 95)
SCENE_NOISE = 1.2  # render_product_scene adds this much luma noise of its own
# Where JPEG keeps the noise (q95 from sigma 3, q90 from sigma 6) the estimate is within
# this share of the true sigma (seller photos, mean per cell: -12% .. +11%).
TOLERANCE = 0.20


def _product_scene() -> np.ndarray:
    return render_product_scene(np.random.default_rng(3), product="box", background="wood",
                                width=480, height=400)


def _textured_garment(height: int = 400, width: int = 480) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    backdrop = 170 + 30 * (y / height) + 10 * np.sin(x / 90.0)
    cloth = 110 + 35 * np.sin(x / 37.0) * np.cos(y / 53.0)  # folds and shading
    cloth += 22 * np.sign(np.sin(2 * np.pi * (x + y) / 6.0))  # twill, 6 px period
    cloth += 12 * np.sin(2 * np.pi * x / 2.5) * np.sin(2 * np.pi * y / 3.0)  # fine knit
    cloth[:, ::5] += 35  # 1-px pinstripes
    dots = rng.integers(0, [height, width], size=(2000, 2))
    cloth[dots[:, 0], dots[:, 1]] = 240  # 1-px print dots
    gray = np.where(x > 0.15 * width, cloth, backdrop)
    return cv2.cvtColor(np.clip(gray + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


SCENES = {"product": (_product_scene(), SCENE_NOISE), "garment": (_textured_garment(), 0.0)}


def _noisy(bgr: np.ndarray, sigma: float) -> np.ndarray:
    draw = np.random.default_rng(42).standard_normal(bgr.shape[:2]).astype(np.float32)
    return np.clip(bgr + (sigma * draw)[..., None] + 0.5, 0, 255).astype(np.uint8)


def _jpeg_gray(bgr: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)


def _estimate(scene: str, sigma: float, quality: int) -> float:
    return noise_sigma(_jpeg_gray(_noisy(SCENES[scene][0], sigma), quality))


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0, 16.0])
def test_uncompressed_gaussian_noise_is_read_despite_edges(sigma):
    clean = np.full((512, 512), 120, np.float32)
    clean[:, 256:] = 200
    cv2.circle(clean, (128, 256), 60, 30, -1)
    noisy = clean + np.random.default_rng(1).normal(0, sigma, clean.shape)
    gray = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    # Rounding to integers adds 1/12 to the variance.
    assert noise_sigma(gray) == pytest.approx(math.hypot(sigma, 12 ** -0.5), rel=0.05)
    assert noise_sigma(clean.astype(np.uint8)) < 0.1


@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("quality", QUALITIES)
def test_clean_jpeg_of_a_textured_scene_reads_small_but_not_zero(scene, quality):
    assert 0.0 < _estimate(scene, 0, quality) < 1.0


@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("quality", QUALITIES)
def test_estimate_rises_with_the_added_sigma(scene, quality):
    readings = [_estimate(scene, sigma, quality) for sigma in SIGMAS]
    assert all(a < b for a, b in itertools.pairwise(readings)), readings


@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("quality,sigma", [(95, s) for s in SIGMAS[1:]]
                         + [(90, s) for s in SIGMAS[2:]])
def test_reads_the_added_sigma_where_jpeg_keeps_the_noise(scene, quality, sigma):
    true_sigma = math.hypot(sigma, SCENES[scene][1])
    assert _estimate(scene, sigma, quality) == pytest.approx(true_sigma, rel=TOLERANCE)


@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("sigma", SIGMAS[2:])
def test_reads_below_the_added_sigma_at_q70(scene, sigma):
    # q70 quantises away the finest noise, and only the finest is measured.
    assert _estimate(scene, sigma, 70) < sigma


def test_strongly_textured_clean_garment_is_not_noisy():
    garment = SCENES["garment"][0]
    noisy_above = load_profile("default").issues.noisy_above
    noisy_reading = _estimate("garment", 12, 90)
    clean_readings = [noise_sigma(cv2.cvtColor(garment, cv2.COLOR_BGR2GRAY))]
    clean_readings += [_estimate("garment", 0, quality) for quality in QUALITIES]
    for reading in clean_readings:
        assert reading < min(noisy_above, 1.0)
        assert reading < 0.05 * noisy_reading


def test_clipped_highlights_are_left_out():
    # A blown-out white half is flat only because the noise was clipped away.
    noise = np.random.default_rng(5).normal(0, 5.0, (300, 400))
    gray = np.clip(np.full((300, 400), 128.0) + noise + 0.5, 0, 255).astype(np.uint8)
    gray[:, :200] = 255
    assert noise_sigma(gray) == pytest.approx(5.0, rel=0.1)


def test_degenerate_inputs():
    assert noise_sigma(np.zeros((2, 9), np.uint8)) == 0.0
    assert noise_sigma(np.full((64, 64), 255, np.uint8)) == 0.0
    assert noise_sigma(np.full((64, 64), 90, np.uint8)) < 0.1
    gray = np.random.default_rng(2).normal(100, 4, (64, 64))
    assert noise_sigma(gray) == noise_sigma(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
    with pytest.raises(ValueError):
        noise_sigma(np.zeros((8, 8, 3), np.uint8))
