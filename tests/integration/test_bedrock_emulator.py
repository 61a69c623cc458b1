"""The Bedrock emulator through a real boto3 ``bedrock-runtime`` client, as the pipeline uses it.

One emulator per module, started by the CLI (``imgstream emulator bedrock``) as a subprocess
on a free port in 16566-16569 with fault settings from its environment; its counters and
faults are reset before each test. Small images keep the module fast.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
import requests
from botocore.config import Config
from PIL import Image

from imaging.samples import render_product_scene
from services.model_catalog import load_catalog

pytestmark = pytest.mark.integration

PORTS = range(16566, 16570)
REMOVE_BG = "stability.stable-image-remove-background-v1:0"
FAST = "stability.stable-fast-upscale-v1:0"
CONSERVATIVE = "stability.stable-conservative-upscale-v1:0"
CREATIVE = "stability.stable-creative-upscale-v1:0"
INPAINT = "stability.stable-image-inpaint-v1:0"
OUTPAINT = "stability.stable-outpaint-v1:0"
START_ENV = {
    "IMGSTREAM_EMULATOR_SEED": "11",
    "IMGSTREAM_EMULATOR_THROTTLE_RATE": "0",
    "IMGSTREAM_EMULATOR_ERROR_RATE": "0",
    "IMGSTREAM_EMULATOR_TIMEOUT_RATE": "0",
    "IMGSTREAM_EMULATOR_FILTER_RATE": "0",
    "IMGSTREAM_EMULATOR_LATENCY_MS": "1",
    "IMGSTREAM_EMULATOR_LATENCY_P95_MS": "0",
}


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip(f"no free port in {PORTS}")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("emulator") / "bedrock.log"
    command = [str(Path(sys.executable).parent / "imgstream"), "emulator", "bedrock",
               "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **START_ENV})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/_emulator/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, f"emulator exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"emulator not healthy:\n{log_path.read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def client(base_url):
    return boto3.client(
        "bedrock-runtime", endpoint_url=base_url, region_name="us-east-1",
        aws_access_key_id="placeholder", aws_secret_access_key="placeholder",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30))


@pytest.fixture(autouse=True)
def _reset(base_url) -> None:
    requests.post(f"{base_url}/_emulator/reset", timeout=5).raise_for_status()


def b64_image(bgr: np.ndarray, ext: str = ".jpg") -> str:
    ok, buffer = cv2.imencode(ext, bgr)
    assert ok
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def product(width: int = 192, height: int = 160) -> np.ndarray:
    return render_product_scene(np.random.default_rng(3), product="bottle", background="white",
                                width=width, height=height)


def flat(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def invoke(client, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke_model(modelId=model_id, body=json.dumps(body))
    assert response["contentType"] == "application/json"
    return json.loads(response["body"].read())


def output_image(payload: dict[str, Any]) -> Image.Image:
    assert payload["finish_reasons"] == [None]
    assert len(payload["seeds"]) == 1 and isinstance(payload["seeds"][0], int)
    return Image.open(io.BytesIO(base64.b64decode(payload["images"][0])))


def stats(base_url: str) -> dict[str, Any]:
    return requests.get(f"{base_url}/_emulator/stats", timeout=5).json()


def set_faults(base_url: str, **faults: float) -> dict[str, Any]:
    response = requests.post(f"{base_url}/_emulator/faults", json=faults, timeout=5)
    response.raise_for_status()
    return response.json()


# --- success shapes ------------------------------------------------------------------


def test_remove_background_gives_png_with_transparent_border(client, base_url):
    cutout = output_image(invoke(client, REMOVE_BG, {"image": b64_image(product())}))
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (192, 160)
    alpha = np.asarray(cutout)[..., 3]
    border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    assert border.max() == 0
    assert alpha[60:120, 80:112].mean() > 200  # the bottle stays opaque
    assert 0.05 < (alpha > 127).mean() < 0.6

    on_white = output_image(invoke(client, REMOVE_BG, {"image": b64_image(product()),
                                                       "output_format": "jpeg"}))
    assert on_white.format == "JPEG" and on_white.mode == "RGB"
    assert np.asarray(on_white)[0].min() > 240  # background composited on white
    counts = stats(base_url)["models"][REMOVE_BG]
    assert counts["billed"] == 2 and counts["billed_usd"] == pytest.approx(0.14)


def test_fast_upscale_gives_exactly_4x_sides(client):
    image = output_image(invoke(client, FAST, {"image": b64_image(product(97, 65)),
                                               "output_format": "webp"}))
    assert image.format == "WEBP" and image.size == (388, 260)


def test_prompted_upscales_reach_about_4_megapixels_and_keep_the_aspect(client):
    payload = invoke(client, CONSERVATIVE, {"image": b64_image(product(128, 96)),
                                            "prompt": "a bottle", "seed": 42})
    assert payload["seeds"] == [42]
    image = output_image(payload)
    assert image.format == "PNG"
    assert 3_900_000 < image.size[0] * image.size[1] < 4_300_000
    assert image.size[0] / image.size[1] == pytest.approx(128 / 96, rel=0.01)
    creative = output_image(invoke(client, f"us.{CREATIVE}", {
        "image": b64_image(product(64, 64)), "prompt": "a bottle", "creativity": 0.5,
        "style_preset": "photographic", "output_format": "jpeg"}))
    assert creative.format == "JPEG" and creative.size == (2048, 2048)


def test_inpaint_fills_the_masked_area(client):
    image = flat(96, 96)
    image[40:56, 40:56] = (0, 0, 255)
    mask = np.zeros((96, 96, 3), np.uint8)
    mask[40:56, 40:56] = 255
    result = output_image(invoke(client, INPAINT, {
        "image": b64_image(image, ".png"), "mask": b64_image(mask, ".png"),
        "prompt": "grey wall", "grow_mask": 2}))
    rgb = np.asarray(result.convert("RGB")).astype(int)
    assert result.size == (96, 96)
    assert abs(rgb[48, 48] - 128).max() < 20  # the red square is gone


def test_outpaint_extends_the_frame(client):
    image = output_image(invoke(client, OUTPAINT, {"image": b64_image(product(96, 64)),
                                                   "left": 10, "up": 6, "down": 2}))
    assert image.size == (106, 72)


# --- validation ----------------------------------------------------------------------

PNG_GARBAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
GIF = base64.b64encode(b"GIF89a" + b"\x00" * 64).decode()
VALIDATION_CASES = [
    ("side below min_side", FAST, {"image": b64_image(flat(31, 64))}, "at least 32 px"),
    ("side above max_side", FAST, {"image": b64_image(flat(1600, 40))}, "at most 1536 px"),
    ("too many pixels", FAST, {"image": b64_image(flat(1100, 1000))}, "at most 1048576 pixels"),
    ("too few pixels", CREATIVE, {"image": b64_image(flat(40, 40)), "prompt": "x"},
     "at least 4096 pixels"),
    ("aspect", REMOVE_BG, {"image": b64_image(flat(300, 100))}, "aspect ratio"),
    ("missing image", FAST, {"output_format": "png"}, "required key [image] not found"),
    ("missing prompt", CONSERVATIVE, {"image": b64_image(flat(64, 64))},
     "required key [prompt] not found"),
    ("unknown field", FAST, {"image": b64_image(flat(64, 64)), "strength": 1},
     "extraneous key [strength] is not permitted"),
    ("bad output_format", FAST, {"image": b64_image(flat(64, 64)), "output_format": "jpg"},
     "jpg is not a valid enum value"),
    ("creativity range", CONSERVATIVE, {"image": b64_image(flat(64, 64)), "prompt": "x",
                                        "creativity": 0.9}, "not less or equal to 0.5"),
    ("seed type", CONSERVATIVE, {"image": b64_image(flat(64, 64)), "prompt": "x",
                                 "seed": "7"}, "expected type: Integer"),
    ("bad base64", FAST, {"image": "not base64!"}, "Invalid base64 in image"),
    ("not an image format", FAST, {"image": GIF}, "must be a JPEG, PNG or WebP"),
    ("undecodable", FAST, {"image": PNG_GARBAGE}, "could not be decoded"),
    ("inpaint without mask or alpha", INPAINT, {"image": b64_image(flat(64, 64)),
                                                "prompt": "x"}, "mask is required"),
    ("outpaint without a direction", OUTPAINT, {"image": b64_image(flat(64, 64))},
     "At least one of left, right, up or down"),
    ("unknown model", "stability.stable-nothing-v9:0", {"image": b64_image(flat(64, 64))},
     "The provided model identifier is invalid."),
]


@pytest.mark.parametrize(("model_id", "body", "fragment"),
                         [case[1:] for case in VALIDATION_CASES],
                         ids=[case[0] for case in VALIDATION_CASES])
def test_invalid_requests_raise_validation_exception(client, base_url, model_id, body,
                                                     fragment):
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_model(modelId=model_id, body=json.dumps(body))
    assert fragment in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    totals = stats(base_url)["totals"]
    assert (totals["received"], totals["rejected"], totals["billed"]) == (1, 1, 0)


def test_malformed_json_and_oversized_body(client):
    with pytest.raises(client.exceptions.ValidationException, match="Malformed input"):
        client.invoke_model(modelId=FAST, body=b"{not json")
    oversized = json.dumps({"image": "A" * 25_000_000})
    with pytest.raises(client.exceptions.ValidationException, match="25000000"):
        client.invoke_model(modelId=FAST, body=oversized)


def test_retired_model_raises_resource_not_found(client):
    for model_id in ("amazon.nova-canvas-v1:0", "us.amazon.titan-image-generator-v2:0"):
        with pytest.raises(client.exceptions.ResourceNotFoundException,
                           match="reached the end of its life"):
            client.invoke_model(modelId=model_id, body=json.dumps({"taskType": "x"}))


# --- faults --------------------------------------------------------------------------


def small_call(client) -> dict[str, Any]:
    return invoke(client, FAST, {"image": b64_image(flat(32, 32))})


def test_throttling_on_demand(client, base_url):
    set_faults(base_url, throttle_rate=1.0)
    for _ in range(3):
        with pytest.raises(client.exceptions.ThrottlingException):
            small_call(client)
    counts = stats(base_url)["models"][FAST]
    assert (counts["received"], counts["throttled"], counts["billed"]) == (3, 3, 0)


def test_server_errors_on_demand_are_500_or_503(client, base_url):
    set_faults(base_url, error_rate=1.0)
    seen = set()
    for _ in range(10):
        with pytest.raises((client.exceptions.InternalServerException,
                            client.exceptions.ServiceUnavailableException)) as caught:
            small_call(client)
        seen.add((type(caught.value).__name__,
                  caught.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert seen == {("InternalServerException", 500), ("ServiceUnavailableException", 503)}
    assert stats(base_url)["totals"]["errors"] == 10


def test_model_timeout_on_demand(client, base_url):
    set_faults(base_url, timeout_rate=1.0, timeout_delay_ms=100)
    started = time.monotonic()
    with pytest.raises(client.exceptions.ModelTimeoutException) as caught:
        small_call(client)
    assert time.monotonic() - started >= 0.1
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 408
    assert stats(base_url)["totals"]["timeouts"] == 1


def test_content_filter_on_demand_answers_200_without_images(client, base_url):
    set_faults(base_url, filter_rate=1.0)
    payload = small_call(client)
    assert payload["finish_reasons"] == ["Filter reason: output image"]
    assert "images" not in payload
    totals = stats(base_url)["totals"]
    assert (totals["filtered"], totals["billed"], totals["billed_usd"]) == (1, 0, 0.0)


def test_seeded_rates_are_reproducible(client, base_url):
    def outcomes() -> list[str]:
        result = []
        for _ in range(30):
            try:
                small_call(client)
                result.append("ok")
            except client.exceptions.ThrottlingException:
                result.append("throttled")
        return result

    set_faults(base_url, throttle_rate=0.3, seed=5)
    first = outcomes()
    set_faults(base_url, seed=6)
    set_faults(base_url, seed=5)  # a new seed restarts the sequence
    assert outcomes() == first
    assert 3 <= first.count("throttled") <= 18
    counts = stats(base_url)["models"][FAST]
    assert counts["throttled"] == 2 * first.count("throttled")
    assert counts["billed"] == 2 * first.count("ok")


def test_latency_and_work_do_not_block_the_server(client, base_url):
    set_faults(base_url, latency_ms=300, latency_p95_ms=300)
    started = time.monotonic()
    small_call(client)
    assert time.monotonic() - started >= 0.3

    set_faults(base_url, latency_ms=0)
    call_started = time.monotonic()
    thread = threading.Thread(target=invoke, args=(client, REMOVE_BG,
                                                   {"image": b64_image(product(384, 384))}))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while stats(base_url)["in_flight"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        requests.get(f"{base_url}/_emulator/health", timeout=5).raise_for_status()
        health_seconds = time.monotonic() - started
    finally:
        thread.join()
    call_seconds = time.monotonic() - call_started
    # GrabCut runs in the thread pool: the loop answers in a fraction of the call's time
    assert health_seconds < max(0.2, call_seconds / 4), (health_seconds, call_seconds)


def test_outage_window_then_recovery(client, base_url):
    answer = set_faults(base_url, outage_seconds=1)
    assert 0.5 < answer["outage_remaining_seconds"] <= 1
    with pytest.raises(client.exceptions.ServiceUnavailableException):
        small_call(client)
    time.sleep(1.05)
    assert output_image(small_call(client)).size == (128, 128)
    counts = stats(base_url)["models"][FAST]
    assert (counts["errors"], counts["billed"]) == (1, 1)


def test_reset_clears_counters_and_restores_start_faults(client, base_url):
    initial = stats(base_url)["faults"]
    assert initial["seed"] == 11 and initial["latency_ms"] == 1.0  # from IMGSTREAM_EMULATOR_*
    set_faults(base_url, throttle_rate=1.0, seed=99, outage_seconds=30)
    with pytest.raises(client.exceptions.ServiceUnavailableException):
        small_call(client)
    requests.post(f"{base_url}/_emulator/reset", timeout=5).raise_for_status()
    after = stats(base_url)
    assert after["faults"] == initial
    assert after["models"] == {} and after["totals"]["received"] == 0
    assert after["outage_remaining_seconds"] == 0
    small_call(client)
    assert stats(base_url)["totals"]["billed"] == 1


def test_admin_refuses_bad_fault_settings(base_url):
    for body in ({"throttle_rate": 2}, {"nonsense": 1}, {"latency_ms": "fast"},
                 {"outage_seconds": -1}, [1]):
        response = requests.post(f"{base_url}/_emulator/faults", json=body, timeout=5)
        assert response.status_code == 400, body
        assert response.json()["message"]
    health = requests.get(f"{base_url}/_emulator/health", timeout=5).json()
    assert health == {"status": "ok", "models": len(load_catalog().models)}
