"""Pure parts of the Bedrock emulator: fault draws, latency, validation, local stand-ins."""

from __future__ import annotations

import base64
import random
import statistics

import cv2
import numpy as np
import pytest

from imaging.samples import render_product_scene
from infra.bedrock_emulator import (
    BedrockError,
    Faults,
    bind_address,
    check_body,
    check_limits,
    decode_image,
    draw_fate,
    fast_upscale,
    latency_seconds,
    outpaint,
    prompted_upscale,
    remove_background,
    resolve_model,
)
from services.model_catalog import load_catalog
from streams.settings import Settings

CATALOG = load_catalog()
FAST = CATALOG.models["stability.stable-fast-upscale-v1:0"]
CONSERVATIVE = CATALOG.models["stability.stable-conservative-upscale-v1:0"]
REMOVE_BG = CATALOG.models["stability.stable-image-remove-background-v1:0"]


def b64_png(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


# --- latency and fault draws ---------------------------------------------------------


def test_latency_is_lognormal_with_the_given_median_and_p95():
    assert latency_seconds(0, 500, 1.0) == 0.0
    assert latency_seconds(200, 0, 2.0) == pytest.approx(0.2)  # no spread: constant
    assert latency_seconds(200, 800, 0.0) == pytest.approx(0.2)
    assert latency_seconds(200, 800, 1.6448536) == pytest.approx(0.8)
    rng = random.Random(1)
    samples = sorted(latency_seconds(100, 400, rng.gauss(0, 1)) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(0.1, rel=0.05)
    assert samples[int(0.95 * len(samples))] == pytest.approx(0.4, rel=0.08)


def test_fates_follow_the_rates_in_order_and_repeat_with_the_seed():
    faults = Faults(throttle_rate=0.2, error_rate=0.25, timeout_rate=0.1, filter_rate=0.5)
    fates = [draw_fate(random.Random(3), faults) for _ in range(3)]
    assert fates[0] == fates[1] == fates[2]
    rng = random.Random(3)
    outcomes = [draw_fate(rng, faults).outcome for _ in range(20_000)]
    share = {name: outcomes.count(name) / len(outcomes) for name in set(outcomes)}
    assert share["throttled"] == pytest.approx(0.2, abs=0.015)
    assert share["internal"] + share["unavailable"] == pytest.approx(0.8 * 0.25, abs=0.015)
    assert share["internal"] == pytest.approx(share["unavailable"], abs=0.015)
    assert share["timeout"] == pytest.approx(0.6 * 0.1, abs=0.01)
    assert share["filtered"] == pytest.approx(0.54 * 0.5, abs=0.015)


def test_fault_rates_of_one_give_one_outcome_and_zero_none():
    rng = random.Random(0)
    assert {draw_fate(rng, Faults(timeout_rate=1.0)).outcome for _ in range(50)} == {"timeout"}
    assert {draw_fate(rng, Faults()).outcome for _ in range(50)} == {"ok"}


def test_fault_updates_are_partial_and_checked():
    faults = Faults(seed=3).updated({"throttle_rate": 1, "latency_ms": 20, "seed": 9.0})
    assert (faults.throttle_rate, faults.latency_ms, faults.seed) == (1.0, 20.0, 9)
    assert faults.error_rate == 0.0
    for bad in ({"throttle_rate": 1.5}, {"latency_ms": -1}, {"nope": 1}, {"seed": 1.5},
                {"error_rate": True}, {"filter_rate": "0.1"}, {"latency_ms": float("inf")}):
        with pytest.raises(ValueError):
            faults.updated(bad)


def test_faults_and_bind_address_come_from_the_settings():
    settings = Settings(emulator_throttle_rate=0.5, emulator_latency_ms=40,
                        emulator_latency_p95_ms=90, emulator_seed=4,
                        bedrock_endpoint="http://bedrock:8090")
    assert Faults.from_settings(settings) == Faults(throttle_rate=0.5, latency_ms=40,
                                                    latency_p95_ms=90, seed=4)
    assert bind_address(settings) == ("bedrock", 8090)
    assert bind_address(Settings(bedrock_endpoint=None)) == ("127.0.0.1", 15002)


# --- model ids and request bodies ----------------------------------------------------


def test_model_ids_with_prefix_or_arn_resolve_and_others_fail_like_bedrock():
    assert resolve_model(CATALOG, "us.stability.stable-fast-upscale-v1:0") is FAST
    arn = "arn:aws:bedrock:us-east-1::foundation-model/stability.stable-fast-upscale-v1:0"
    assert resolve_model(CATALOG, arn) is FAST
    with pytest.raises(BedrockError, match="model identifier is invalid") as caught:
        resolve_model(CATALOG, "stability.stable-fast-upscale-v2:0")
    assert (caught.value.name, caught.value.status) == ("ValidationException", 400)
    with pytest.raises(BedrockError, match="end of its life") as caught:
        resolve_model(CATALOG, "amazon.nova-canvas-v1:0")
    assert (caught.value.name, caught.value.status) == ("ResourceNotFoundException", 404)


def test_bodies_get_defaults_and_schema_errors_name_the_key():
    assert check_body(FAST, {"image": "x"}) == {"image": "x", "output_format": "png"}
    params = check_body(CONSERVATIVE, {"image": "x", "prompt": "p", "seed": 5.0})
    assert (params["seed"], params["creativity"], params["negative_prompt"]) == (5, 0.35, None)
    cases = [
        (FAST, ["x"], "expected type: JSONObject"),
        (FAST, {"image": "x", "mode": 1}, "extraneous key [mode]"),
        (FAST, {}, "required key [image]"),
        (FAST, {"image": 5}, "#/image: expected type: String"),
        (FAST, {"image": "x", "output_format": "gif"}, "gif is not a valid enum value"),
        (CONSERVATIVE, {"image": "x", "prompt": ""}, "length 0 is not greater or equal to 1"),
        (CONSERVATIVE, {"image": "x", "prompt": "p", "seed": True}, "expected type: Integer"),
        (CONSERVATIVE, {"image": "x", "prompt": "p", "creativity": 0.05},
         "0.05 is not greater or equal to 0.1"),
    ]
    for model, body, fragment in cases:
        with pytest.raises(BedrockError) as caught:
            check_body(model, body)
        assert caught.value.name == "ValidationException"
        assert fragment in caught.value.message
        assert caught.value.message.startswith("Malformed input request")


@pytest.mark.parametrize(("model", "size", "fragment"), [
    (FAST, (31, 100), "each side must be at least 32 px"),
    (FAST, (1537, 40), "each side must be at most 1536 px"),
    (FAST, (1030, 1030), "at most 1048576 pixels"),
    (FAST, (32, 31), "at least 32 px"),
    (CATALOG.models["stability.stable-creative-upscale-v1:0"], (63, 64), "at least 4096 pixels"),
    (REMOVE_BG, (64, 161), "aspect ratio (width / height) 0.398 is outside 0.4..2.5"),
    (REMOVE_BG, (161, 64), "is outside 0.4..2.5"),
])
def test_limits_of_the_catalog_are_enforced(model, size, fragment):
    with pytest.raises(BedrockError) as caught:
        check_limits(model, *size)
    assert fragment in caught.value.message and caught.value.status == 400


def test_limits_accept_the_edges():
    check_limits(FAST, 32, 32)
    check_limits(FAST, 1024, 1024)
    check_limits(REMOVE_BG, 160, 64)


def test_decoding_keeps_alpha_and_normalises_gray_and_16_bit():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 77
    assert decode_image(b64_png(rgba))[0, 0, 3] == 77
    assert decode_image(b64_png(np.full((8, 8), 9, np.uint8))).shape == (8, 8, 3)
    deep = decode_image(b64_png(np.full((8, 8, 3), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and deep.max() == 255
    for data, fragment in (("%%%", "Invalid base64"),
                           (base64.b64encode(b"BM" + bytes(40)).decode(), "JPEG, PNG or WebP")):
        with pytest.raises(BedrockError, match=fragment):
            decode_image(data)


# --- local stand-ins -----------------------------------------------------------------


def test_background_removal_gives_alpha_zero_at_the_border_and_opaque_product():
    scene = render_product_scene(np.random.default_rng(5), product="box", background="grey",
                                 width=160, height=128)
    cutout, on_white = remove_background(scene)
    assert cutout.shape == (128, 160, 4) and on_white.shape == (128, 160, 3)
    alpha = cutout[..., 3]
    assert max(alpha[0].max(), alpha[-1].max(), alpha[:, 0].max(), alpha[:, -1].max()) == 0
    assert alpha[50:90, 60:100].mean() > 200
    assert np.array_equal(cutout[..., :3], scene)
    assert on_white[0, 0].min() == 255


def test_upscales_and_outpaint_sizes():
    image = np.random.default_rng(0).integers(0, 255, (33, 47, 3), dtype=np.uint8)
    assert fast_upscale(image).shape == (132, 188, 3)
    big = prompted_upscale(image, 0.35)
    assert big.shape[0] * big.shape[1] == pytest.approx(4_194_304, rel=0.01)
    assert big.shape[1] / big.shape[0] == pytest.approx(47 / 33, rel=0.01)
    assert outpaint(image, 1, 2, 3, 4).shape == (40, 50, 3)
