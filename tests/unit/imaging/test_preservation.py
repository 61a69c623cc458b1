"""The content gate and the honest after-score (pure)."""


import cv2
import numpy as np
import pytest

from imaging.assessment import assess_quality
from imaging.ops import apply_operation
from imaging.preservation import GateRules, _chromaticity_shift, check_preservation
from imaging.samples import render_product_scene_with_mask
from profiles import load_profile

PROFILE = load_profile("default")
RULES = GateRules()
WHITE = (255, 255, 255)


def _scene(backdrop="grey", product="tshirt"):
    return render_product_scene_with_mask(np.random.default_rng(9), product=product,
                                          background=backdrop, width=480, height=360)


def _jpeg(bgr, quality=92):
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def test_a_clean_background_replacement_passes():
    scene, truth = _scene()
    result = (scene * truth[..., None] + 255 * (1 - truth[..., None])).astype(np.uint8)
    verdict = check_preservation(scene, result, truth, WHITE, RULES)
    assert verdict.passed, verdict.reasons


def test_a_replacement_that_cuts_off_part_of_the_product_is_refused():
    scene, truth = _scene()
    cut = truth.copy()
    _ys, xs = np.nonzero(truth > 0.5)
    cut[:, : xs.min() + (xs.max() - xs.min()) // 4] = 0  # a sleeve gone
    result = (scene * cut[..., None] + 255 * (1 - cut[..., None])).astype(np.uint8)
    verdict = check_preservation(scene, result, truth, WHITE, RULES)
    assert not verdict.passed
    assert any(r.startswith("product cut") for r in verdict.reasons)
    # also without knowing the product: the new outline runs through the garment
    blind = check_preservation(scene, result, None, WHITE, RULES)
    assert not blind.passed and "uniform colour" in blind.reason


def test_a_mild_enhancement_passes_and_blotches_or_a_colour_cast_do_not():
    scene, _truth = _scene("grey")
    sharpened = apply_operation("sharpen", scene, {"amount": 0.6, "radius": 1.2})
    assert check_preservation(scene, sharpened, None, None, RULES).passed
    rng = np.random.default_rng(1)
    blotchy = cv2.resize(rng.normal(0, 12, (36, 48)).astype(np.float32), (480, 360))
    blotched = np.clip(scene + blotchy[..., None], 0, 255).astype(np.uint8)
    verdict = check_preservation(scene, blotched, None, None, RULES)
    assert not verdict.passed and "blotches" in verdict.reason
    cast = np.clip(scene.astype(int) + np.array([0, 0, 25]), 0, 255).astype(np.uint8)  # redder
    verdict = check_preservation(scene, cast, None, None, RULES)
    assert not verdict.passed and "colour cast" in verdict.reason


def test_the_colour_shift_is_the_exact_mean_chromaticity_distance():
    # float32 accumulation over the pixels was off by a few percent
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (400, 500, 3), dtype=np.uint8)
    after = np.clip(before.astype(int) + rng.integers(-3, 4, before.shape), 0, 255
                    ).astype(np.uint8)
    where = rng.random((400, 500)) > 0.3

    def chromaticity(pixels):
        values = pixels.astype(np.float64) + 1.0
        return (values / values.sum(axis=1, keepdims=True)).mean(axis=0)

    expected = np.linalg.norm(chromaticity(after[where]) - chromaticity(before[where])) * 100
    assert _chromaticity_shift(before, after, where) == pytest.approx(expected, rel=1e-4)
    assert _chromaticity_shift(before, after, np.zeros_like(where)) is None


def test_brightening_a_dark_photo_is_not_called_blotchy():
    scene, _ = _scene("grey")
    dark = (scene * 0.35).astype(np.uint8)
    restored = apply_operation("brightness", dark, {"target": 128.0,
                                                    "current": float(dark.mean())})
    assert check_preservation(dark, restored, None, None, RULES).passed


@pytest.mark.parametrize("short_side", [300, 500])
def test_upscaling_alone_never_raises_a_score_or_tier(short_side):
    scene, _ = _scene("white", "mug")
    small = cv2.resize(scene, (round(short_side * 4 / 3), short_side),
                       interpolation=cv2.INTER_AREA)
    before = assess_quality(_jpeg(small), PROFILE)
    big = apply_operation("upscale", small, {"short_side": 1000, "max_scale": 4.0})
    after = assess_quality(_jpeg(big), PROFILE, source_size=(small.shape[1], small.shape[0]))
    for name in ("resolution", "sharpness"):
        assert after.judgement.scores[name] <= before.judgement.scores[name]
    # The round trip can smooth the original's JPEG blocks a little (BRISQUE), no more.
    assert after.judgement.overall_score <= before.judgement.overall_score + 3.5
    order = ["poor", "good", "excellent"]
    assert order.index(after.judgement.tier) <= order.index(before.judgement.tier)
    naive = assess_quality(_jpeg(big), PROFILE)  # what the old judge credited
    assert naive.judgement.scores["resolution"] > after.judgement.scores["resolution"]
