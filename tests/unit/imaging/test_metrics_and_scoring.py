import dataclasses

import cv2
import numpy as np
import pytest

from imaging.metrics import QualityMetrics, gray_percentile, laplacian_variance, noise_sigma
from imaging.scoring import judge, linear_score, sub_scores
from profiles import load_profile

PROFILE = load_profile("default")


@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_estimate_recovers_gaussian_sigma_despite_edges(sigma):
    rng = np.random.default_rng(1)
    clean = np.full((512, 512), 120, np.float32)
    clean[:, 256:] = 200  # a strong edge the MAD estimator must ignore
    cv2.circle(clean, (128, 256), 60, 30, -1)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.15)
    assert noise_sigma(clean.astype(np.uint8)) < 0.5


def test_blur_lowers_laplacian_variance():
    rng = np.random.default_rng(2)
    sharp = (rng.random((256, 256)) * 255).astype(np.uint8)
    assert laplacian_variance(cv2.GaussianBlur(sharp, (0, 0), 2)) < laplacian_variance(sharp) / 10


def test_gray_percentile_matches_numpy():
    gray = np.random.default_rng(4).integers(0, 256, (300, 300), dtype=np.uint8)
    for q in (2, 50, 98):
        assert abs(gray_percentile(gray, q) - np.percentile(gray, q)) <= 1


GOOD = QualityMetrics(blur=900.0, brightness=130.0, brightness_deviation=2.0, contrast=55.0,
                      noise=1.0, brisque=18.0, background_complexity=0.02,
                      subject_fraction=0.5, width=1200, height=1200, megapixels=1.44,
                      file_size_bytes=300_000)


def test_seed_example_sub_scores():
    # The seed's worked example: blur 1199 -> sharpness 95, contrast 45.7 -> 72.
    scores = sub_scores(dataclasses.replace(GOOD, blur=1199.24, contrast=45.73), PROFILE)
    assert scores["sharpness"] == pytest.approx(95, abs=1)
    assert scores["contrast"] == pytest.approx(72, abs=1)


def test_a_clean_photo_is_excellent_with_no_issues():
    judgement = judge(GOOD, PROFILE)
    assert judgement.tier == "excellent" and judgement.issues == []
    assert judgement.overall_score >= PROFILE.tiers.excellent


@pytest.mark.parametrize("change,issue,target_key", [
    (dict(width=600, height=400), "low_resolution", "short_side"),
    (dict(blur=40.0), "blurry", "blur"),
    (dict(brightness=60.0, brightness_deviation=68.0), "underexposed", "brightness"),
    (dict(brightness=200.0, brightness_deviation=72.0), "overexposed", "brightness"),
    (dict(contrast=20.0), "low_contrast", "contrast"),
    (dict(noise=9.0), "noisy", "noise"),
    (dict(background_complexity=0.7), "cluttered_background", "background_complexity"),
    (dict(brisque=75.0), "low_perceptual_quality", "brisque"),
])
def test_each_issue_has_a_concrete_recommendation(change, issue, target_key):
    judgement = judge(dataclasses.replace(GOOD, **change), PROFILE)
    assert issue in judgement.issues
    assert judgement.tier != "excellent"
    [rec] = [r for r in judgement.recommendations if r.issue == issue]
    assert target_key in rec.target and any(ch.isdigit() for ch in rec.action)


def test_low_resolution_recommendation_names_the_target_size():
    judgement = judge(dataclasses.replace(GOOD, width=400, height=533), PROFILE)
    [rec] = judgement.recommendations
    assert rec.action.startswith("upscale to 1000 px on the short side (400x533 -> 1000x1332)")


def test_many_problems_make_a_poor_photo():
    bad = dataclasses.replace(GOOD, blur=15.0, brightness=30.0, brightness_deviation=98.0,
                              contrast=12.0, noise=10.0, brisque=70.0, width=300, height=300)
    assert judge(bad, PROFILE).tier == "poor"


def test_linear_score_direction_and_clamping():
    from imaging.profile import LinearScale

    assert linear_score(5, LinearScale(0, 10)) == 50
    assert linear_score(20, LinearScale(0, 10)) == 100
    assert linear_score(5, LinearScale(10, 0)) == 50
    assert linear_score(-1, LinearScale(10, 0)) == 100


def test_flat_image_has_no_brisque_and_still_gets_a_report():
    from imaging.assessment import assess_quality
    from tests.hostile_files import photo

    flat = cv2.imencode(".png", np.full((200, 300, 3), 128, np.uint8))[1].tobytes()
    report = assess_quality(flat, PROFILE)
    assert report.metrics.brisque is None
    assert "naturalness" not in report.judgement.scores
    assert 0 <= report.judgement.overall_score <= 100
    assert assess_quality(photo(64, 64), PROFILE).metrics.brisque is not None


def test_a_dark_product_on_a_well_lit_backdrop_is_not_underexposed():
    from imaging.metrics import exposure_deviation
    from profiles import load_profile

    scale = load_profile("default").scores.brightness
    frame = np.full((100, 100), 150, np.uint8)  # mid-tone sheet, no highlights
    frame[30:70, 30:70] = 35  # a black skirt
    mask = np.zeros_like(frame, bool)
    mask[30:70, 30:70] = True
    assert exposure_deviation(35.0, frame, scale) > 0  # the frame alone cannot tell
    assert exposure_deviation(35.0, frame, scale, frame[~mask]) == 0.0
    dark = (frame * 0.35).astype(np.uint8)  # the whole photo underexposed
    assert exposure_deviation(12.0, dark, scale, dark[~mask]) > 0
