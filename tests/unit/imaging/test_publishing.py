"""Publishing (pure): what finalize publishes, how it is judged, and what a kept original
costs."""

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

import imaging.assessment
import imaging.encoding
import imaging.publishing
import imaging.segmentation
from imaging.assessment import assess_quality
from imaging.clean_jpeg import strip_jpeg_metadata
from imaging.decoding import decode_image
from imaging.enhancement import apply_plan
from imaging.ops import apply_operation
from imaging.publishing import LEFT_OUT, publish, steps_as_published, without_blamed_steps
from imaging.samples import darken, render_product_scene_with_mask
from profiles import load_profile

PROFILE = load_profile("default")


def _scene(backdrop="grey", product="tshirt", width=480, height=360):
    return render_product_scene_with_mask(np.random.default_rng(9), product=product,
                                          background=backdrop, width=width, height=height)


def _jpeg(bgr, quality=92):
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


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


def _counting(monkeypatch, module, name):
    """Record the calls of ``module.name`` (the real function still runs)."""
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_photo_up_to_the_large_size_is_segmented_once_by_every_stage_that_asks(
        monkeypatch):
    scene, _ = _scene("grey", "tshirt", width=1400, height=1050)
    data = _jpeg(scene)
    imaging.segmentation._cache.clear()
    calls = _counting(monkeypatch, imaging.segmentation, "model_mask")
    before = assess_quality(data, PROFILE)  # the assess stage, in the same worker
    assert len(calls) == 1
    source = decode_image(data, PROFILE.outputs.large_max_side).bgr  # enhance_local's
    plan = [{"order": 0, "operation": "background", "method": "local",
             "params": {"color": [255, 255, 255], "rules": PROFILE.segmentation.as_dict(),
                        "mask_side": PROFILE.assessment.working_max_side}}]
    enhanced, steps = apply_plan(source, plan)
    assert steps[0].success and not (steps[0].details or "").startswith("declined")
    publication = publish(data, enhanced, before.judgement.overall_score - 50, PROFILE,
                          [s.as_dict() for s in steps], source=source, before=before)
    assert not publication.kept_original, publication.reason
    # Beyond the assessment's run, only the cut mask's own looks: a finer one at its
    # faint parts and one at the mirrored photo; the gate and the after-check run none.
    first = calls[0][0]
    for small, side in calls[1:]:
        assert side == PROFILE.segmentation.second_side or np.array_equal(small, first[:, ::-1])


def test_a_kept_original_that_fits_is_stripped_not_encoded(monkeypatch):
    scene, _ = _scene("white", "mug")
    data = _with_gps_and_zip(scene)
    before = assess_quality(data, PROFILE)
    encoded = _counting(monkeypatch, imaging.encoding, "jpeg_rendition")
    publication = publish(data, None, 100.0, PROFILE, before=before)
    assert [args[0] for args in encoded] == ["thumb"]  # no large JPEG made to be dropped
    assert publication.large_jpeg.data == strip_jpeg_metadata(data)
    assert publication.after is before  # the original's own pixels, as assessed
