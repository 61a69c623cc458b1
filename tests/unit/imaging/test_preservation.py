"""The content gate and the honest after-score (pure)."""

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from imaging.assessment import assess_quality
from imaging.decoding import decode_image
from imaging.enhancement import apply_plan
from imaging.ops import apply_operation
from imaging.preservation import GateRules, _chromaticity_shift, check_preservation
from imaging.publishing import LEFT_OUT, publish, steps_as_published, without_blamed_steps
from imaging.samples import darken, render_product_scene_with_mask
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


@pytest.mark.parametrize("product", ["tshirt", "sneaker"])
def test_finalize_judges_an_upscale_alone_as_its_source(product):
    scene, _ = _scene("wood", product)
    small = cv2.resize(scene, (400, 300), interpolation=cv2.INTER_AREA)
    data = _jpeg(small)
    before = assess_quality(data, PROFILE)
    big = apply_operation("upscale", decode_image(data).bgr, {"short_side": 1000})
    publication = publish(data, big, before.judgement.overall_score, PROFILE,
                          [{"operation": "upscale", "success": True}])
    assert not publication.kept_original, publication.reason
    after = publication.after
    # Measured on the published pixels brought back to the source's size in one step:
    # the detail the source had, no more (credit) and no less (a round-trip penalty).
    assert after.metrics.blur == pytest.approx(before.metrics.blur, rel=0.03)
    assert abs(after.judgement.scores["sharpness"] - before.judgement.scores["sharpness"]) <= 1.0
    assert after.judgement.scores["resolution"] == before.judgement.scores["resolution"]


def _with_gps_and_zip(bgr) -> bytes:
    image = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=93, exif=exif)
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("secret.txt", "hidden")
    return buffer.getvalue() + payload.getvalue()


@pytest.mark.parametrize("excellent", [True, False])
def test_no_metadata_or_trailing_bytes_in_any_published_file(excellent):
    scene, _ = _scene("white", "mug")
    data = _with_gps_and_zip(scene)
    enhanced = None if excellent else apply_operation("sharpen", scene, {})
    publication = publish(data, enhanced, 0.0 if not excellent else 100.0, PROFILE,
                          [{"operation": "sharpen", "success": True}])
    for rendition in publication.renditions:
        assert b"Exif" not in rendition.data and b"PhoneMaker" not in rendition.data
        assert b"PK\x03\x04" not in rendition.data
        with Image.open(io.BytesIO(rendition.data)) as image:
            assert not image.getexif()
            image.load()
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(rendition.data))


def _dark_plan(src):
    return [{"order": 0, "operation": "brightness", "method": "local",
             "params": {"target": 128.0, "current": float(src.mean())}},
            {"order": 1, "operation": "contrast", "method": "local",
             "params": {"clip_limit": 12.0, "tile_grid": 8, "smooth_std": 0.0}}]


def test_a_refused_result_is_published_without_the_steps_the_gate_blames():
    scene, _ = _scene("grey")
    data = _jpeg(darken(scene, 0.5))
    src = decode_image(data, PROFILE.outputs.large_max_side).bgr
    plan = _dark_plan(src)
    enhanced, steps = apply_plan(src, plan)
    executed = [s.as_dict() for s in steps]
    assert not publish(data, enhanced, 0.0, PROFILE, executed, source=src).gate["passed"]

    publication = publish(data, enhanced, 0.0, PROFILE, executed, source=src,
                          plan_steps=plan)
    assert not publication.kept_original and publication.left_out == ("contrast",)
    assert publication.gate["passed"] and publication.gate["left_out"] == ["contrast"]
    assert any(r.startswith("blotches") for r in publication.gate["refused"])
    brightened, _ = apply_plan(src, plan[:1])  # what is published: the brightening alone
    published = decode_image(publication.large_jpeg.data).bgr
    assert np.abs(published.astype(int) - brightened).mean() < 2
    marked = steps_as_published(executed, publication)
    assert marked[0] == executed[0]
    assert marked[1]["details"].startswith(LEFT_OUT) and "blotches" in marked[1]["details"]


def test_which_steps_are_left_out_and_when_none_are():
    local = [{"operation": op, "method": "local"} for op in
             ("brightness", "contrast", "sharpen", "background", "upscale")]
    kept, left_out = without_blamed_steps(local, {"reasons": ["blotches: 9%", "halos: 4%"]})
    assert left_out == ("contrast", "sharpen")
    assert [s["operation"] for s in kept] == ["brightness", "background", "upscale"]
    assert without_blamed_steps(local, {"reasons": ["product cut: 2%"]})[1] == ("background",)
    # an AI step would be paid for again: no second try
    paid = [*local[:1], {"operation": "background", "method": "ai"}]
    assert without_blamed_steps(paid, {"reasons": ["product cut: 2%"]})[1] == ()
    # nothing to leave out, or nothing left
    assert without_blamed_steps(local[-1:], {"reasons": ["blotches: 9%"]})[1] == ()
    assert without_blamed_steps(local[1:2], {"reasons": ["blotches: 9%"]})[1] == ()
