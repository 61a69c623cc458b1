"""The mask confidence rule (pure, no model) and the product mask on rendered scenes."""

import cv2
import numpy as np
import pytest

from imaging.samples import render_product_scene_with_mask
from imaging.segmentation import MaskRules, find_product_mask, judge_mask

RULES = MaskRules()


def _blob(h=200, w=160, box=(40, 30, 160, 130)):
    alpha = np.zeros((h, w), np.float32)
    y0, x0, y1, x1 = box
    alpha[y0:y1, x0:x1] = 1.0
    return alpha


def test_a_solid_product_in_the_middle_is_trusted():
    verdict = judge_mask(_blob(), RULES, "model")
    assert verdict.confident and verdict.reason is None


def test_a_product_touching_the_frame_is_not_trusted():
    verdict = judge_mask(_blob(box=(0, 30, 160, 130)), RULES, "model")
    assert not verdict.confident and verdict.reason == "touches_frame"
    assert "frame" in verdict.detail


def test_a_fragmented_mask_is_not_trusted():
    alpha = np.zeros((200, 160), np.float32)
    for y in range(20, 180, 40):
        for x in range(20, 140, 40):
            alpha[y:y + 20, x:x + 20] = 1.0
    verdict = judge_mask(alpha, RULES, "model")
    assert not verdict.confident and verdict.reason == "fragmented"


@pytest.mark.parametrize("box, reason", [((90, 70, 100, 80), "too_small"),
                                         ((2, 2, 198, 158), "too_large")])
def test_too_small_or_too_large_is_not_trusted(box, reason):
    rules = MaskRules(max_frame_touch=1.0)
    assert judge_mask(_blob(box=box), rules, "model").reason == reason


def test_an_unsure_matte_is_not_trusted():
    alpha = _blob() * 0.5
    assert judge_mask(alpha + 0.01, RULES, "model").reason in {"unsure_matte", "too_small"}
    soft = _blob()
    soft[40:160, 30:130] = 0.6
    assert judge_mask(soft, RULES, "model").reason == "unsure_matte"


def test_disagreeing_with_the_backdrop_model_is_not_trusted():
    verdict = judge_mask(_blob(), RULES, "model", reference=_blob(box=(120, 100, 190, 150)))
    assert verdict.reason == "disagrees"


@pytest.mark.parametrize("product, backdrop", [("tshirt", "wood"), ("sneaker", "desk"),
                                               ("bottle", "grey")])
def test_masks_of_rendered_scenes_match_the_true_product(product, backdrop):
    scene, truth = render_product_scene_with_mask(np.random.default_rng(5), product=product,
                                                  background=backdrop, width=480, height=360)
    mask = find_product_mask(scene, RULES)
    assert mask is not None
    est = mask.alpha > 0.5
    gt = cv2.resize(truth, (est.shape[1], est.shape[0])) > 0.5
    iou = (est & gt).sum() / (est | gt).sum()
    assert iou > 0.8, f"{product} on {backdrop}: IoU {iou:.2f}"
