"""The mask confidence rule (pure, no model) and the product mask on rendered scenes."""

import cv2
import numpy as np
import pytest

from imaging.decoding import decode_image
from imaging.ops.background import product_alpha
from imaging.samples import render_product_scene_with_mask
from imaging.segmentation import (
    MaskRules,
    backdrop_inside,
    backdrop_look,
    faint_part,
    find_mask_to_cut_with,
    find_product_mask,
    judge_mask,
    mirrored_look,
    missed_part,
    missed_part_look,
    second_look,
    unsure_piece,
    unsure_piece_look,
)
from tests.shared_files import shared_dir

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


def _mug(handle=0.3):
    """A solid body with a faint handle attached on its right, and a faint blob apart."""
    handle_layer = np.zeros((200, 160), np.float32)
    cv2.ellipse(handle_layer, (128, 100), (18, 30), 0, -90, 90, handle, 6)
    alpha = np.maximum(_blob(), handle_layer)
    alpha[10:20, 10:20] = 0.3
    return alpha


def test_a_faint_part_is_what_hangs_on_the_product_beyond_its_outline():
    faint = faint_part(_mug())
    assert faint[100, 146] and faint[:, 135:].sum() > 150
    assert not faint[10:20, 10:20].any()  # apart from the product
    assert not faint[40:160, 30:130].any()  # the product itself
    assert not faint_part(_blob()).any()


def _painted(region):
    """A photo whose product is painted white where ``region`` is, black elsewhere."""
    photo = np.zeros((*region.shape, 3), np.uint8)
    photo[region] = 255
    return photo


def _sees_white(small, side):
    """A model that sees exactly the white pixels of whatever it is given."""
    return (small[..., 0] > 128).astype(np.float32)


def test_a_part_faint_at_one_size_and_solid_at_another_is_unsure():
    alpha = _mug()
    mask = judge_mask(alpha, RULES, "model")
    assert mask.confident
    with_handle = _painted(alpha > 0.2)  # the finer look sees the handle
    unsure = second_look(mask, with_handle, RULES, look=_sees_white)
    assert not unsure.confident and unsure.reason == "unsure_matte"
    assert unsure.disputed > RULES.max_disputed and "320 px" in unsure.detail
    body_only = _painted(alpha > 0.5)  # the finer look agrees with the first
    same = second_look(mask, body_only, RULES, look=_sees_white)
    assert same.confident and same.disputed == 0.0


def test_a_very_faint_part_is_looked_at_again_from_the_profiles_faint_level():
    alpha = _mug(handle=0.08)  # a white handle the network barely sees
    assert not faint_part(alpha, 0.15).any()
    assert faint_part(alpha, RULES.faint_level)[:, 135:].sum() > 150


def test_a_mask_the_mirrored_photo_does_not_confirm_is_unsure():
    base = _blob(box=(120, 50, 160, 110))  # a lamp's base, 7.5% of the frame; shade missed
    mask = judge_mask(base, RULES, "model")
    assert mask.confident and mask.area < RULES.mirrored_below_area
    whole_lamp = lambda small, side: _blob(box=(40, 50, 160, 110))[:, ::-1]  # noqa: E731
    unsure = mirrored_look(mask, np.zeros((200, 160, 3), np.uint8), RULES, look=whole_lamp)
    assert not unsure.confident and unsure.reason == "unsure_matte"
    assert unsure.mirrored_dispute > 1.0 and "mirror image" in unsure.detail


def test_a_mask_the_mirrored_photo_confirms_stays_trusted():
    alpha = _blob(box=(120, 50, 160, 110))
    seen = []

    def mirrored_model(small, side):
        seen.append((small[0, 0, 0], side))
        return alpha[:, ::-1] * 0.97  # the model on the mirrored photo: the same product

    photo = np.zeros((200, 160, 3), np.uint8)
    photo[:, 0] = 9  # the left column: the model must see it on the right
    mask = mirrored_look(judge_mask(alpha, RULES, "model"), photo, RULES, look=mirrored_model)
    assert mask.confident and mask.mirrored_dispute == 0.0
    assert seen == [(0, RULES.model_side)]


def test_an_unsure_mask_or_a_large_one_is_not_looked_at_in_the_mirror():
    def never(small, side):
        raise AssertionError("looked again")
    photo = np.zeros((200, 160, 3), np.uint8)
    unsure = judge_mask(_blob(box=(0, 30, 160, 130)), RULES, "model")
    assert mirrored_look(unsure, photo, RULES, look=never) is unsure
    garment = judge_mask(_blob(), RULES, "model")  # 37.5% of the frame
    assert garment.confident and mirrored_look(garment, photo, RULES, look=never) is garment


def test_a_mask_without_a_faint_part_is_not_looked_at_again():
    def never(small, side):
        raise AssertionError("looked again")
    mask = judge_mask(_blob(), RULES, "model")
    assert second_look(mask, np.zeros((200, 160, 3), np.uint8), RULES, look=never) is mask


DOOR, GREY, WHITE = (60, 140, 210), (120, 120, 120), (245, 245, 245)  # BGR


def _hung_on(backdrop, product=GREY, patch=None, at=(90, 150, 110, 116)):
    """A garment (a box, with the mask the network made of it) hung on ``backdrop``,
    with ``patch`` colour at ``at`` = (y0, y1, x0, x1): by default between the right arm
    and the body, 3 px inside the outline, where the door shows through."""
    photo = np.full((200, 160, 3), backdrop, np.uint8)
    photo[30:170, 40:120] = product
    if patch is not None:
        y0, y1, x0, x1 = at
        photo[y0:y1, x0:x1] = patch
    return photo, _blob(box=(30, 40, 170, 120))


def test_backdrop_kept_by_the_outline_is_found_and_refused():
    photo, alpha = _hung_on(DOOR, patch=DOOR)
    share = backdrop_inside(photo, alpha, RULES.hue_chroma)
    assert share == pytest.approx(60 * 6 / (140 * 80), rel=0.05)
    mask = backdrop_look(judge_mask(alpha, RULES, "model"), photo, RULES)
    assert not mask.confident and mask.reason == "backdrop_inside"
    assert mask.backdrop_inside == share and "backdrop's colour" in mask.detail


@pytest.mark.parametrize("backdrop, product, patch, at", [
    (DOOR, GREY, DOOR, (90, 120, 70, 90)),     # print in the backdrop's hue, deep inside
    (DOOR, DOOR, DOOR, (90, 150, 110, 116)),   # a garment the colour of the door
    (WHITE, GREY, WHITE, (90, 150, 110, 116)),  # a white band by a white wall: no hue
    (DOOR, GREY, None, (0, 0, 0, 0)),          # nothing kept
])
def test_what_is_not_backdrop_kept_inside(backdrop, product, patch, at):
    photo, alpha = _hung_on(backdrop, product, patch, at)
    assert backdrop_inside(photo, alpha, RULES.hue_chroma) == 0.0
    mask = backdrop_look(judge_mask(alpha, RULES, "model"), photo, RULES)
    assert mask.confident and mask.backdrop_inside == 0.0


def test_a_tiny_piece_of_backdrop_hue_is_tolerated():
    photo, alpha = _hung_on(DOOR, patch=DOOR, at=(90, 94, 112, 116))  # 16 px of 11200
    mask = backdrop_look(judge_mask(alpha, RULES, "model"), photo, RULES)
    assert mask.confident and 0.0 < mask.backdrop_inside <= RULES.max_backdrop_inside


def _soft_outlined(h=200, w=160, box=(40, 30, 160, 130)):
    """A solid product whose outline is soft over two pixels, as the network's is."""
    alpha = cv2.GaussianBlur(_blob(h, w, box), (0, 0), 0.8)
    return np.clip(alpha, 0.0, 1.0)


def test_a_soft_outline_is_not_an_unsure_piece():
    alpha = _soft_outlined()
    assert np.count_nonzero((alpha > 0.2) & (alpha < 0.8)) > 300  # the band is there
    assert unsure_piece(alpha) == 0.0
    mask = unsure_piece_look(judge_mask(alpha, RULES, "model"), RULES)
    assert mask.confident and mask.unsure_piece == 0.0


def test_a_thick_half_seen_part_is_refused():
    alpha = _soft_outlined(box=(20, 20, 180, 140))
    alpha[172:188, 60:90] = 0.5  # a cuff the network half sees, at the hem
    share = unsure_piece(alpha)
    assert share == pytest.approx(16 * 30 / np.count_nonzero(alpha > 0.5), rel=0.15)
    verdict = judge_mask(alpha, RULES, "model")
    assert verdict.confident  # nothing in the whole-mask rules sees it
    mask = unsure_piece_look(verdict, RULES)
    assert not mask.confident and mask.reason == "unsure_part"
    assert mask.unsure_piece == share and "half transparent" in mask.detail


def test_a_small_soft_piece_is_tolerated():
    alpha = _soft_outlined()
    alpha[155:162, 60:68] = 0.5  # 56 px of ~12000
    mask = unsure_piece_look(judge_mask(alpha, RULES, "model"), RULES)
    assert mask.confident and 0.0 < mask.unsure_piece <= RULES.max_unsure_piece


RED_SHEET, SHADOW = (40, 60, 200), (20, 30, 100)


def _striped_on(backdrop, missed=None, missed_colour=None):
    """A grey-and-white striped garment (a box) on ``backdrop``, with its mask; the mask
    leaves out ``missed`` = (y0, y1, x0, x1), painted ``missed_colour`` (the garment's
    own stripes unless given)."""
    photo = np.full((200, 160, 3), backdrop, np.uint8)
    photo[30:150, 30:120] = (128, 128, 128)
    photo[30:150:12, 30:120] = (235, 235, 235)
    alpha = _blob(box=(30, 30, 150, 120))
    if missed is not None:
        y0, y1, x0, x1 = missed
        if missed_colour is None:
            photo[y0:y1, x0:x1] = (128, 128, 128)
            photo[y0:y1:12, x0:x1] = (235, 235, 235)
        else:
            photo[y0:y1, x0:x1] = missed_colour
    return photo, alpha


def test_a_sleeve_the_network_missed_is_found_and_refused():
    photo, alpha = _striped_on(RED_SHEET, missed=(60, 110, 120, 136))  # a forearm
    share = missed_part(photo, alpha)
    assert share == pytest.approx(50 * 16 / (120 * 90), rel=0.2)
    mask = missed_part_look(judge_mask(alpha, RULES, "model"), photo, RULES)
    assert not mask.confident and mask.reason == "missed_part"
    assert mask.missed_part == share and "cut off" in mask.detail


@pytest.mark.parametrize("missed, colour", [
    (None, None),                       # the whole garment is in the mask
    ((60, 110, 120, 136), SHADOW),      # a shadow beside it: the sheet's colour, darker
    ((150, 152, 40, 110), None),        # a 2 px sliver: the outline's own blur
])
def test_what_is_not_a_missed_part(missed, colour):
    photo, alpha = _striped_on(RED_SHEET, missed, colour)
    mask = missed_part_look(judge_mask(alpha, RULES, "model"), photo, RULES)
    assert mask.confident and mask.missed_part <= RULES.max_missed_part


def test_a_part_in_the_backdrop_colours_cannot_be_told_and_is_not_flagged():
    photo, alpha = _striped_on((128, 128, 128), missed=(60, 110, 120, 136))  # grey floor
    assert missed_part(photo, alpha) == 0.0


def _seller_photo(name):
    shared = shared_dir()
    if shared is None:
        pytest.skip("the shared folder is not beside the repository")
    return decode_image((shared / "images" / "sellers" / name).read_bytes()).bgr


def test_a_dress_on_a_door_that_shows_between_arm_and_body_is_left_alone():
    photo = _seller_photo("dress/bcb839e0-9055-4760-b5a4-b7fd703b716f.jpg")
    assert find_product_mask(photo, RULES).confident  # the network keeps the door gap
    mask = find_mask_to_cut_with(photo, RULES)
    assert not mask.confident and mask.reason == "backdrop_inside"


def test_a_printed_tee_on_a_wall_stays_trusted():
    photo = _seller_photo("t-shirt/12a48c81-d35b-45f8-93fd-5d69153163e2.jpg")
    mask = find_mask_to_cut_with(photo, RULES)
    assert mask.confident and mask.backdrop_inside <= RULES.max_backdrop_inside
    assert mask.unsure_piece <= RULES.max_unsure_piece


def test_a_sleeve_the_network_half_sees_leaves_the_background_alone():
    """A teal sleeve in sunlight on a wood floor: cut, its cuff came out half transparent."""
    photo = _seller_photo("longsleeve/6361debd-1437-4d04-acc2-f9dae8157d5c.jpg")
    assert find_product_mask(photo, RULES).confident
    mask = find_mask_to_cut_with(photo, RULES)
    assert not mask.confident and mask.reason == "unsure_part"


def test_a_hem_the_network_missed_leaves_the_background_alone():
    """A navy top on a grey carpet: cut, its hem band was gone."""
    photo = _seller_photo("t-shirt/788d20a1-ad98-46fe-b80d-af9fd32a4e0f.jpg")
    assert find_product_mask(photo, RULES).confident
    mask = find_mask_to_cut_with(photo, RULES)
    assert not mask.confident and mask.reason == "missed_part"


def _bench_scene(index):
    """Scene ``index`` of bench/outcome_bench.py --generated."""
    products = ("tshirt", "sneaker", "mug", "bottle", "box", "lamp")
    backgrounds = ("wood", "desk", "grey", "sweep", "white")
    return render_product_scene_with_mask(
        np.random.default_rng((11, index)), product=products[index % 6],
        background=backgrounds[(index // 6) % 5],
        width=(640, 480, 800)[index % 3], height=(480, 640, 600)[index % 3])


def test_a_mug_whose_handle_the_model_half_sees_is_left_alone():
    scene, _ = _bench_scene(2)  # mug on wood: at 256 px the handle is faint
    assert find_product_mask(scene, RULES).confident  # the assessment's region is fine
    mask = find_mask_to_cut_with(scene, RULES)
    # The half-seen handle is a thick soft piece: refused before the finer second look.
    assert not mask.confident and mask.reason == "unsure_part"
    assert mask.unsure_piece > RULES.max_unsure_piece


def test_a_lamp_whose_shade_the_model_misses_is_left_alone():
    scene, _ = _bench_scene(125)  # lamp on wood: at 256 px the white shade is not seen
    mask = find_mask_to_cut_with(scene, RULES)
    assert not mask.confident and mask.mirrored_dispute > RULES.max_mirrored_dispute


@pytest.mark.parametrize("index", [30, 150])  # t-shirts on wood: dark hems
def test_the_full_size_matte_keeps_the_product_edge(index):
    scene, truth = _bench_scene(index)
    alpha = product_alpha(scene, RULES)
    assert (alpha[truth > 0.9] > 0.5).mean() >= 0.99


def test_a_photo_cut_twice_is_segmented_once(monkeypatch):
    import imaging.segmentation as segmentation

    scene, _ = _bench_scene(27)  # a bottle on wood: small enough for the mirrored look
    segmentation._cache.clear()
    calls = []
    model = segmentation.model_mask
    monkeypatch.setattr(segmentation, "model_mask",
                        lambda small, side: calls.append(side) or model(small, side))
    first = find_mask_to_cut_with(scene, RULES)
    assert first.confident and first.mirrored_dispute is not None
    asked = len(calls)
    assert asked >= 2  # the mask and its mirror image
    assert find_mask_to_cut_with(scene, RULES) is first and len(calls) == asked
