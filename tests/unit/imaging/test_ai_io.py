"""Model input fitting and output application (imaging/ai_io.py): no server involved."""

import dataclasses

import cv2
import numpy as np
import pytest

from imaging.ai_io import apply_model_output, prepare_model_input, upscale_size
from imaging.errors import PermanentError
from imaging.ops.upscale import upscale
from services.model_catalog import load_catalog

CATALOG = load_catalog()
BACKGROUND = CATALOG.get("stability.stable-image-remove-background-v1:0")
FAST_UPSCALE = CATALOG.get("stability.stable-fast-upscale-v1:0")
CONSERVATIVE = CATALOG.get("stability.stable-conservative-upscale-v1:0")
CREATIVE = CATALOG.get("stability.stable-creative-upscale-v1:0")
BG_STEP = {"order": 3, "operation": "background", "method": "ai", "model_id": BACKGROUND.id,
           "params": {"color": [255, 255, 255], "work_side": 256, "iterations": 3},
           "estimated_cost_usd": 0.07}
UP_STEP = {"order": 4, "operation": "upscale", "method": "ai", "model_id": FAST_UPSCALE.id,
           "params": {"short_side": 1000, "max_scale": 4.0}, "estimated_cost_usd": 0.03}


def _photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields, a block and a little noise (compresses like a photo)."""
    corners = np.random.default_rng(seed).integers(0, 256, (3, 3, 3), dtype=np.uint8)
    image = cv2.resize(corners, (width, height), interpolation=cv2.INTER_LINEAR)
    image[height // 4:3 * height // 4, width // 4:3 * width // 4] = (30, 60, 200)
    noise = np.empty_like(image)
    cv2.setRNGSeed(seed)
    cv2.randu(noise, 0, 6)
    return cv2.add(image, noise)


def _sent(prepared) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(prepared.image, np.uint8), cv2.IMREAD_UNCHANGED)


def _within(model, width: int, height: int) -> bool:
    limits = model.limits
    return (min(width, height) >= limits.get("min_side", 0)
            and max(width, height) <= limits.get("max_side", np.inf)
            and limits.get("min_pixels", 0) <= width * height <= limits.get("max_pixels", np.inf)
            and limits.get("min_aspect", 0) <= width / height <= limits.get("max_aspect", np.inf))


@pytest.mark.parametrize("model", [BACKGROUND, FAST_UPSCALE, CONSERVATIVE, CREATIVE],
                         ids=lambda m: m.id.split(".")[1])
@pytest.mark.parametrize("size", [(20, 20), (40, 300), (640, 480), (1000, 200), (200, 1000),
                                  (1025, 1024), (1600, 1200), (3000, 100), (4100, 2600)])
def test_every_input_is_fitted_to_the_model_limits(model, size):
    prepared = prepare_model_input(_photo(*size), model, {"operation": model.operation,
                                                           "params": {}})
    sent = _sent(prepared)
    assert _within(model, sent.shape[1], sent.shape[0]), (sent.shape, model.limits)
    assert prepared.source_size == size


def test_an_input_within_limits_is_sent_untouched_and_lossless():
    bgr = _photo(640, 480)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    assert (prepared.scale, prepared.pad) == (1.0, (0, 0, 0, 0))
    assert prepared.image.startswith(b"\x89PNG")
    assert np.array_equal(_sent(prepared), bgr)


def test_fast_upscale_takes_at_most_one_megapixel():
    prepared = prepare_model_input(_photo(1600, 1200), FAST_UPSCALE, UP_STEP)
    sent = _sent(prepared)
    assert sent.shape[0] * sent.shape[1] <= 1_048_576
    assert prepared.scale == pytest.approx(1182 / 1600, abs=1e-3)
    assert sent.shape[:2] == (887, 1182)  # aspect kept


def test_a_too_small_input_is_enlarged_to_the_minimum_side():
    prepared = prepare_model_input(_photo(40, 50), BACKGROUND, BG_STEP)
    assert _sent(prepared).shape[:2] == (80, 64)
    assert prepared.scale == pytest.approx(1.6)


def test_a_too_wide_input_is_padded_with_its_edges_to_the_aspect_limit():
    bgr = _photo(1000, 200)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    sent = _sent(prepared)
    assert prepared.pad == (100, 100, 0, 0)
    assert sent.shape[:2] == (400, 1000)  # 2.5:1 exactly
    assert np.array_equal(sent[100:300], bgr)
    assert np.array_equal(sent[0], bgr[0]) and np.array_equal(sent[-1], bgr[-1])


def test_a_too_tall_input_is_padded_left_and_right():
    prepared = prepare_model_input(_photo(201, 1000), CONSERVATIVE, BG_STEP)
    assert prepared.pad == (0, 0, 99, 100)
    assert _sent(prepared).shape[:2] == (1000, 400)


def test_limits_that_cannot_be_met_are_a_permanent_error():
    impossible = dataclasses.replace(BACKGROUND, limits={"min_side": 100, "max_pixels": 5000})
    with pytest.raises(PermanentError, match="cannot be fitted"):
        prepare_model_input(_photo(300, 300), impossible, BG_STEP)


def test_the_same_pixels_give_the_same_bytes():
    bgr = _photo(900, 700, seed=3)
    first = prepare_model_input(bgr, FAST_UPSCALE, UP_STEP)
    again = prepare_model_input(bgr.copy(), FAST_UPSCALE, UP_STEP)
    view = np.ascontiguousarray(np.pad(bgr, ((1, 1), (1, 1), (0, 0))))[1:-1, 1:-1]
    assert again == first
    assert prepare_model_input(view, FAST_UPSCALE, UP_STEP).image == first.image
    big = _photo(2600, 1800)  # above the PNG size: JPEG, still deterministic
    assert (prepare_model_input(big, BACKGROUND, BG_STEP).image
            == prepare_model_input(big.copy(), BACKGROUND, BG_STEP).image)
    assert prepare_model_input(big, BACKGROUND, BG_STEP).image.startswith(b"\xff\xd8")


def test_body_params_per_family():
    assert prepare_model_input(_photo(100, 100), BACKGROUND, BG_STEP).body_params == {
        "output_format": "png"}  # the cut-out's alpha
    assert prepare_model_input(_photo(100, 100), FAST_UPSCALE, UP_STEP).body_params == {
        "output_format": "jpeg"}
    prompted = prepare_model_input(_photo(100, 100), CONSERVATIVE, UP_STEP).body_params
    assert prompted["prompt"] and prompted["output_format"] == "jpeg"
    custom = {**UP_STEP, "params": {**UP_STEP["params"], "prompt": "a shoe", "creativity": 0.2}}
    assert prepare_model_input(_photo(100, 100), CONSERVATIVE, custom).body_params == {
        "output_format": "jpeg", "prompt": "a shoe", "creativity": 0.2}


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_a_cut_out_is_composited_on_the_step_color():
    bgr = _photo(200, 100)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    alpha = np.zeros((100, 200), np.uint8)
    alpha[:, 100:] = 255
    alpha[:, 99] = 128
    cutout = np.dstack([bgr, alpha])
    step = {**BG_STEP, "params": {**BG_STEP["params"], "color": [0, 0, 255]}}  # RGB blue
    result = apply_model_output(bgr, _png(cutout), prepared, step)
    assert result.dtype == np.uint8 and result.shape == bgr.shape
    assert (result[:, :99] == (255, 0, 0)).all()  # BGR of RGB blue
    assert np.array_equal(result[:, 100:], bgr[:, 100:])
    expected = np.clip(bgr[:, 99] * (128 / 255) + np.array([255, 0, 0]) * (127 / 255) + 0.5,
                       0, 255).astype(np.uint8)
    assert np.abs(result[:, 99].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("factor", [1, 2])
def test_padding_is_cropped_back_at_the_output_scale(factor):
    bgr = _photo(1000, 200)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    sent = _sent(prepared)
    sent[:100] = 0  # whatever the model does to the padding must not survive
    sent[300:] = 0
    answer = cv2.resize(sent, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    result = apply_model_output(bgr, _png(np.dstack([answer, np.full(answer.shape[:2], 255,
                                                                     np.uint8)])),
                                prepared, BG_STEP)
    assert np.array_equal(result, bgr)  # nearest 2x then area 1/2x: the same pixels


@pytest.mark.parametrize("size", [(500, 400), (300, 700), (1600, 700), (120, 90)])
def test_an_upscale_result_has_the_size_of_the_local_op(size):
    bgr = _photo(*size)
    prepared = prepare_model_input(bgr, FAST_UPSCALE, UP_STEP)
    sent = _sent(prepared)
    answer = cv2.resize(sent, (sent.shape[1] * 4, sent.shape[0] * 4),
                        interpolation=cv2.INTER_NEAREST)
    result = apply_model_output(bgr, cv2.imencode(".jpg", answer)[1].tobytes(), prepared,
                                UP_STEP)
    local = upscale(bgr, short_side=1000, max_scale=4.0)
    assert result.shape == local.shape
    assert upscale_size(size, 1000, 4.0) == (local.shape[1], local.shape[0])


def test_gray_and_16_bit_answers_become_bgr_uint8():
    bgr = _photo(128, 96)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    gray16 = (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    result = apply_model_output(bgr, _png(gray16), prepared, BG_STEP)
    assert result.dtype == np.uint8 and result.shape == bgr.shape


def test_an_undecodable_answer_is_a_permanent_error():
    bgr = _photo(128, 96)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    with pytest.raises(PermanentError, match="not a decodable image"):
        apply_model_output(bgr, b"<html>gateway timeout</html>", prepared, BG_STEP)
