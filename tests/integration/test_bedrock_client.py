"""The Bedrock client against the project's emulator and the stack's SeaweedFS: real boto3
calls, real faults, real cache objects.

The emulator is a private instance (its own thread and port, 16570-16573): fault injection
and its billing counters must not be shared with other tests using the stack's emulator.
The AI cache bucket is this run's own and is removed at the end.
"""

from __future__ import annotations

import asyncio
import json
import threading

import boto3
import cv2
import numpy as np
import pytest
import requests
from aiohttp import web

from imaging.ai_io import apply_model_output, prepare_model_input
from imaging.ops.upscale import upscale
from infra.bedrock_emulator import create_app
from services.bedrock import BedrockClient, ModelCallFailed
from services.model_catalog import load_catalog
from services.object_store import ObjectStore, ObjectUri
from tests.conftest import RUN_ID

pytestmark = pytest.mark.integration

CATALOG = load_catalog()
BACKGROUND = CATALOG.get("stability.stable-image-remove-background-v1:0")
FAST_UPSCALE = CATALOG.get("stability.stable-fast-upscale-v1:0")
BG_STEP = {"order": 0, "operation": "background", "method": "ai", "model_id": BACKGROUND.id,
           "params": {"color": [255, 255, 255]}, "estimated_cost_usd": BACKGROUND.price_usd}
UP_STEP = {"order": 1, "operation": "upscale", "method": "ai", "model_id": FAST_UPSCALE.id,
           "params": {"short_side": 400, "max_scale": 4.0},
           "estimated_cost_usd": FAST_UPSCALE.price_usd}
PORTS = range(16570, 16574)


class _Emulator:
    """A private emulator on its own event loop thread, driven through its admin API."""

    def __init__(self, settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(create_app(settings, CATALOG))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._runner.setup())
        for port in PORTS:
            try:
                self._run(web.TCPSite(self._runner, "127.0.0.1", port).start())
            except OSError:
                continue
            self.url = f"http://127.0.0.1:{port}"
            return
        self.stop()
        raise RuntimeError(f"no free port in {PORTS}")

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def faults(self, **changes) -> None:
        requests.post(f"{self.url}/_emulator/faults", json=changes, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(f"{self.url}/_emulator/reset", timeout=5).raise_for_status()

    def counts(self, model_id: str) -> dict:
        stats = requests.get(f"{self.url}/_emulator/stats", timeout=5).json()
        return stats["models"].get(model_id, {"received": 0, "billed": 0})

    def stop(self) -> None:
        self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def emulator(stack):
    _, settings = stack
    server = _Emulator(settings.model_copy(update={"emulator_seed": 11}))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bedrock_settings(stack, emulator):
    _, settings = stack
    return settings.model_copy(update={
        "bedrock_endpoint": emulator.url, "ai_cache_bucket": f"imgstream-test-{RUN_ID}-ai-cache",
        "bedrock_max_attempts": 8, "bedrock_timeout_seconds": 30.0,
        "bedrock_backoff_base_seconds": 0.01, "bedrock_backoff_max_seconds": 0.05})


@pytest.fixture(scope="module")
async def store(bedrock_settings):
    store = ObjectStore(bedrock_settings)
    await store.ensure_buckets()
    yield store
    bucket = boto3.resource(
        "s3", endpoint_url=bedrock_settings.s3_endpoint, region_name=bedrock_settings.s3_region,
        aws_access_key_id=bedrock_settings.s3_access_key,
        aws_secret_access_key=bedrock_settings.s3_secret_key,
    ).Bucket(bedrock_settings.ai_cache_bucket)
    bucket.objects.all().delete()
    bucket.delete()


@pytest.fixture
def client(bedrock_settings, store, emulator):
    emulator.reset()
    client = BedrockClient(bedrock_settings, CATALOG, store)
    yield client
    client.close()


def _photo(seed: int, width: int = 240, height: int = 180) -> np.ndarray:
    """A product-like shot: a coloured box on a noisy light background (unique per seed)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(225, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    x0, y0 = width // 4, height // 4
    image[y0:3 * y0, x0:3 * x0] = rng.integers(0, 160, 3, dtype=np.uint8)
    return image


async def test_background_removal_is_paid_once_then_served_from_the_cache(
        client, emulator, store, bedrock_settings):
    bgr = _photo(1)
    prepared = prepare_model_input(bgr, BACKGROUND, BG_STEP)
    first = await client.invoke(BACKGROUND.id, prepared, "req-a")
    assert (first.paid, first.cache_hit, first.attempts, first.output_format) == (
        True, False, 1, "png")
    assert first.cost_usd == BACKGROUND.price_usd
    result = apply_model_output(bgr, first.output, prepared, BG_STEP)
    assert result.shape == bgr.shape and result.dtype == np.uint8
    assert (result[2, 2] >= 250).all()  # the background became the step's white

    record = json.loads(await store.get(ObjectUri(
        bedrock_settings.ai_cache_bucket, f"bedrock/{BACKGROUND.id}/{first.cache_key}.json")))
    assert record["request_id"] == "req-a" and record["cost_usd"] == BACKGROUND.price_usd
    assert record["params"] == prepared.body_params and record["created_at"]

    again = await client.invoke(BACKGROUND.id, prepare_model_input(bgr, BACKGROUND, BG_STEP),
                                "req-a")  # a redelivery of the request that paid
    other = await client.invoke(BACKGROUND.id, prepared, "req-b")
    assert (again.cache_hit, again.paid, again.cost_usd) == (True, False, BACKGROUND.price_usd)
    assert (other.cache_hit, other.paid, other.cost_usd) == (True, False, 0.0)
    assert again.output == other.output == first.output
    assert emulator.counts(BACKGROUND.id)["billed"] == 1
    assert emulator.counts(BACKGROUND.id)["received"] == 1


async def test_fast_upscale_result_has_the_local_ops_size(client, emulator):
    bgr = _photo(2, 150, 100)
    prepared = prepare_model_input(bgr, FAST_UPSCALE, UP_STEP)
    invocation = await client.invoke(FAST_UPSCALE.id, prepared, "req-up")
    assert invocation.output_format == "jpeg"
    answer = cv2.imdecode(np.frombuffer(invocation.output, np.uint8), cv2.IMREAD_COLOR)
    assert answer.shape[:2] == (400, 600)  # the model's 4x
    result = apply_model_output(bgr, invocation.output, prepared, UP_STEP)
    assert result.shape == upscale(bgr, short_side=400, max_scale=4.0).shape


async def test_half_of_the_calls_throttled_still_all_succeed_with_retries(client, emulator):
    emulator.faults(throttle_rate=0.5)
    results = [await client.invoke(BACKGROUND.id,
                                   prepare_model_input(_photo(10 + i, 96, 96), BACKGROUND,
                                                       BG_STEP), f"req-t{i}")
               for i in range(6)]
    counts = emulator.counts(BACKGROUND.id)
    assert all(r.paid for r in results)
    assert counts["billed"] == 6 and counts["throttled"] > 0
    assert sum(r.attempts for r in results) == counts["received"] == 6 + counts["throttled"]


async def test_a_validation_error_is_not_retried(client, emulator):
    prepared = prepare_model_input(_photo(20, 96, 96), BACKGROUND, BG_STEP)
    tiny = cv2.imencode(".png", _photo(21, 16, 16))[1].tobytes()  # below the 64 px minimum
    with pytest.raises(ModelCallFailed) as caught:
        await client.invoke(BACKGROUND.id, type(prepared)(tiny, prepared.body_params, 1.0,
                                                          (0, 0, 0, 0), (16, 16)), "req-v")
    assert caught.value.reason.startswith("rejected: ValidationException: ")
    assert "at least 64 px" in caught.value.reason
    assert caught.value.attempts == 1 == emulator.counts(BACKGROUND.id)["received"]


async def test_a_filtered_answer_fails_with_the_filter_reason(client, emulator):
    emulator.faults(filter_rate=1.0)
    prepared = prepare_model_input(_photo(30, 96, 96), BACKGROUND, BG_STEP)
    with pytest.raises(ModelCallFailed) as caught:
        await client.invoke(BACKGROUND.id, prepared, "req-f")
    assert caught.value.reason == "content_filtered: Filter reason: output image"
    assert emulator.counts(BACKGROUND.id)["billed"] == 0
    emulator.faults(filter_rate=0.0)  # nothing was cached: the next call pays
    assert (await client.invoke(BACKGROUND.id, prepared, "req-f")).paid


async def test_retries_exhausted_fail_with_the_last_error(client, emulator, bedrock_settings):
    emulator.faults(throttle_rate=1.0)
    prepared = prepare_model_input(_photo(40, 96, 96), BACKGROUND, BG_STEP)
    with pytest.raises(ModelCallFailed) as caught:
        await client.invoke(BACKGROUND.id, prepared, "req-x")
    attempts = bedrock_settings.bedrock_max_attempts
    assert caught.value.reason == (
        f"retries_exhausted: ThrottlingException after {attempts} attempts")
    assert caught.value.attempts == attempts == emulator.counts(BACKGROUND.id)["received"]


async def test_a_retired_model_never_reaches_the_emulator(client, emulator):
    prepared = prepare_model_input(_photo(50, 96, 96), BACKGROUND, BG_STEP)
    with pytest.raises(ModelCallFailed, match=r"model_not_callable: amazon\.titan"):
        await client.invoke("amazon.titan-image-generator-v2:0", prepared, "req-r")
    assert requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["totals"][
        "received"] == 0
