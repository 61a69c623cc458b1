"""assess_quality end to end on pure code: degradations must lower the verdict."""

import glob
from pathlib import Path

import cv2
import numpy as np
import pytest

from imaging.assessment import assess_quality, working_decoded
from imaging.decoding import decode_image
from imaging.samples import add_noise, blur, darken, render_product_scene
from profiles import load_profile

PROFILE = load_profile("default")
SELLERS = Path(__file__).resolve().parents[4] / "shared" / "images" / "sellers"


def _jpeg(bgr: np.ndarray, quality: int = 92) -> bytes:
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def _sharp_photos() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(8)
    photos = [(f"{p}-{b}", render_product_scene(rng, product=p, background=b, width=900,
                                                height=900))
              for p, b in [("mug", "white"), ("box", "wood"), ("lamp", "sweep")]]
    for path in sorted(glob.glob(str(SELLERS / "*" / "*.jpg")))[:40:10]:
        photos.append((Path(path).name, cv2.imread(path)))
    return photos


DEGRADATIONS = {
    "gaussian blur": lambda bgr: _jpeg(blur(bgr, 3.0)),
    "noise": lambda bgr: _jpeg(add_noise(bgr, np.random.default_rng(1), 14.0)),
    "jpeg q10": lambda bgr: _jpeg(bgr, 10),
    "darkening": lambda bgr: _jpeg(darken(bgr, 0.3)),
}


@pytest.mark.parametrize("name,bgr", _sharp_photos(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_each_degradation_lowers_brisque_and_overall(name, bgr):
    original = assess_quality(_jpeg(bgr), PROFILE)
    for label, degrade in DEGRADATIONS.items():
        worse = assess_quality(degrade(bgr), PROFILE)
        assert worse.judgement.overall_score < original.judgement.overall_score, (label, name)
        if label != "darkening":  # BRISQUE normalises contrast: darkening is a weak signal
            assert worse.metrics.brisque > original.metrics.brisque, (label, name)


def test_report_is_deterministic_and_carries_the_subject_in_original_pixels():
    data = _jpeg(render_product_scene(np.random.default_rng(2), product="bottle",
                                      background="white", width=2400, height=1800))
    a, b = assess_quality(data, PROFILE), assess_quality(data, PROFILE)
    assert a.metrics == b.metrics and a.judgement == b.judgement
    assert a.working_scale < 0.5 and (a.metrics.width, a.metrics.height) == (2400, 1800)
    x0, y0, x1, y1 = a.subject["box"]
    assert a.subject["method"] == "backdrop"
    assert 0 <= x0 < x1 <= 2400 and 0 <= y0 < y1 <= 1800


@pytest.mark.parametrize("size", [(400, 300), (1155, 866), (1600, 1200)])
def test_the_working_copy_made_from_a_full_size_decode_equals_a_decode_at_working_size(size):
    scene = render_product_scene(np.random.default_rng(4), product="mug", background="wood",
                                 width=size[0], height=size[1])
    data = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    full = decode_image(data, PROFILE.outputs.large_max_side)
    made = working_decoded(full, PROFILE)
    direct = decode_image(data, PROFILE.assessment.working_max_side)
    assert np.array_equal(made.bgr, direct.bgr)
    assert (made.original_width, made.original_height) == size


def test_no_working_copy_is_made_from_a_reduced_decode():
    scene = render_product_scene(np.random.default_rng(4), product="mug", background="wood",
                                 width=2400, height=1800)
    data = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    assert working_decoded(decode_image(data, PROFILE.outputs.large_max_side), PROFILE) is None
