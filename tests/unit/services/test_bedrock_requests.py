"""Bedrock request bodies, answers, error classes, cache keys and the client's retry policy,
without a network (the integration tests run them against the emulator)."""

import asyncio
import base64
import json

import botocore.exceptions
import pytest

from imaging.ai_io import PreparedInput
from imaging.errors import ObjectMissing, PermanentError
from infra.bedrock_emulator import check_body
from services.ai_cache import cache_key
from services.bedrock import BedrockClient, ModelCallFailed
from services.bedrock_requests import (
    Retry,
    build_body,
    classify,
    failure_reason,
    parse_response,
    sniff_format,
)
from services.model_catalog import load_catalog
from streams.settings import Settings

CATALOG = load_catalog()
BACKGROUND = CATALOG.get("stability.stable-image-remove-background-v1:0")
FAST_UPSCALE = CATALOG.get("stability.stable-fast-upscale-v1:0")
CONSERVATIVE = CATALOG.get("stability.stable-conservative-upscale-v1:0")
NOVA = CATALOG.get("amazon.nova-canvas-v1:0")
TITAN = CATALOG.get("amazon.titan-image-generator-v2:0")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
B64 = base64.b64encode(PNG).decode()


def test_stability_bodies_are_the_image_plus_params():
    assert build_body(BACKGROUND, B64, {"output_format": "png"}) == {
        "image": B64, "output_format": "png"}
    assert build_body(FAST_UPSCALE, B64, {}) == {"image": B64}
    assert build_body(CONSERVATIVE, B64, {"prompt": "a shoe", "creativity": 0.2}) == {
        "image": B64, "prompt": "a shoe", "creativity": 0.2}


def test_stability_bodies_pass_the_emulators_schema():
    for model, params in ((BACKGROUND, {"output_format": "png"}),
                          (FAST_UPSCALE, {"output_format": "jpeg"}),
                          (CONSERVATIVE, {"output_format": "jpeg", "prompt": "a shoe"})):
        checked = check_body(model, build_body(model, B64, params))
        assert checked["image"] == B64


def test_a_prompted_upscale_without_prompt_is_rejected_before_any_call():
    with pytest.raises(ModelCallFailed, match="requires a prompt") as caught:
        build_body(CONSERVATIVE, B64, {"output_format": "png"})
    assert caught.value.attempts == 0 and isinstance(caught.value, PermanentError)


def test_amazon_image_task_bodies():
    assert build_body(TITAN, B64, {}) == {"taskType": "BACKGROUND_REMOVAL",
                                          "backgroundRemovalParams": {"image": B64}}
    assert build_body(NOVA, B64, {"text": "bright studio light", "seed": 3}) == {
        "taskType": "IMAGE_VARIATION",
        "imageVariationParams": {"images": [B64], "text": "bright studio light"},
        "imageGenerationConfig": {"numberOfImages": 1, "seed": 3}}


def _answer(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_the_first_image_of_an_answer_is_returned_decoded():
    body = _answer(seeds=[42], finish_reasons=[None], images=[B64])
    assert parse_response(BACKGROUND, body) == PNG
    assert parse_response(TITAN, _answer(images=[B64])) == PNG


@pytest.mark.parametrize("body,reason", [
    (_answer(seeds=[1], finish_reasons=["Filter reason: output image"]),
     "content_filtered: Filter reason: output image"),
    (_answer(seeds=[1], finish_reasons=["Filter reason: prompt"], images=[]),
     "content_filtered: Filter reason: prompt"),
    (_answer(seeds=[1], finish_reasons=["Inference error"], images=[B64]),
     "model_error: Inference error"),
    (_answer(images=[], error="The generated image has been blocked"),
     "content_filtered: The generated image has been blocked"),
    (_answer(seeds=[1], finish_reasons=[None], images=[]), "bad_response: no image"),
    (_answer(images=["not base64!"]), "bad_response: image is not base64"),
    (b"<html>502</html>", "bad_response: not JSON"),
    (b"[1, 2]", "bad_response: expected an object"),
])
def test_answers_without_a_usable_image_fail_with_a_reason(body, reason):
    with pytest.raises(ModelCallFailed) as caught:
        parse_response(BACKGROUND, body)
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize("code,status,retry", [
    ("ThrottlingException", 429, Retry.BACKOFF),
    ("ModelNotReadyException", 429, Retry.BACKOFF),
    ("ModelTimeoutException", 408, Retry.BACKOFF),
    ("InternalServerException", 500, Retry.BACKOFF),
    ("ServiceUnavailableException", 503, Retry.BACKOFF),
    ("ModelErrorException", 424, Retry.ONCE),
    ("ValidationException", 400, Retry.NEVER),
    ("ServiceQuotaExceededException", 400, Retry.NEVER),
    ("AccessDeniedException", 403, Retry.NEVER),
    ("ResourceNotFoundException", 404, Retry.NEVER),
    ("ReadTimeoutError", None, Retry.NEVER),
    ("ConnectTimeoutError", None, Retry.BACKOFF),
    ("EndpointConnectionError", None, Retry.BACKOFF),
    ("ConnectionClosedError", None, Retry.NEVER),
    ("SomethingNew", 502, Retry.BACKOFF),
    ("SomethingNew", 418, Retry.NEVER),
])
def test_errors_are_classified_like_the_aws_table(code, status, retry):
    assert classify(code, status) is retry


def test_failure_reasons_name_the_kind():
    assert failure_reason("ResourceNotFoundException", "gone").startswith("model_not_found:")
    assert failure_reason("ValidationException", "bad") == "rejected: ValidationException: bad"


def test_formats_are_sniffed_from_magic_bytes():
    assert sniff_format(PNG) == "png"
    assert sniff_format(b"\xff\xd8\xff\xe0" + b"\0" * 8) == "jpeg"
    assert sniff_format(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    with pytest.raises(ModelCallFailed, match="bad_response"):
        sniff_format(b"GIF89a")


def test_cache_keys_depend_on_image_model_and_params_not_on_param_order():
    key = cache_key(PNG, BACKGROUND.id, {"output_format": "png", "a": 1})
    assert key == cache_key(PNG, BACKGROUND.id, {"a": 1, "output_format": "png"})
    assert len(key) == 64
    assert len({key, cache_key(PNG + b"x", BACKGROUND.id, {"output_format": "png", "a": 1}),
                cache_key(PNG, FAST_UPSCALE.id, {"output_format": "png", "a": 1}),
                cache_key(PNG, BACKGROUND.id, {"output_format": "jpeg", "a": 1})}) == 4


# --- the client's retry policy, with the HTTP call and the store replaced -------------------

class _MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def get(self, uri) -> bytes:
        try:
            return self.objects[str(uri)]
        except KeyError:
            raise ObjectMissing(str(uri)) from None

    async def put(self, uri, data: bytes, content_type: str) -> None:
        self.objects[str(uri)] = data


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": f"{code} happened"},
         "ResponseMetadata": {"HTTPStatusCode": status}}, "InvokeModel")


@pytest.fixture
def scripted():
    """A client whose calls answer from a script: exceptions are raised, bytes returned."""
    settings = Settings(bedrock_endpoint="http://127.0.0.1:9", bedrock_max_attempts=4,
                        bedrock_backoff_base_seconds=0.001, bedrock_backoff_max_seconds=0.002)
    client = BedrockClient(settings, CATALOG, _MemoryStore())
    calls: list[str] = []

    def run(script):
        def invoke(model_id: str, body: str) -> bytes:
            calls.append(model_id)
            step = script[min(len(calls), len(script)) - 1]
            if isinstance(step, Exception):
                raise step
            return step
        client._invoke_sync = invoke
        return client, calls

    yield run
    client.close()


def _prepared() -> PreparedInput:
    return PreparedInput(image=PNG, body_params={"output_format": "png"}, scale=1.0,
                         pad=(0, 0, 0, 0), source_size=(8, 8))


OK = _answer(seeds=[1], finish_reasons=[None], images=[B64])


async def test_retryable_errors_are_retried_then_paid_once(scripted):
    client, calls = scripted([_client_error("ThrottlingException", 429),
                              botocore.exceptions.ConnectTimeoutError(endpoint_url="x"), OK])
    result = await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert (result.paid, result.attempts, result.cost_usd, result.output) == (
        True, 3, BACKGROUND.price_usd, PNG)
    again = await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert (again.cache_hit, again.paid, again.cost_usd, len(calls)) == (
        True, False, BACKGROUND.price_usd, 3)
    other = await client.invoke(BACKGROUND.id, _prepared(), "req-2")
    assert (other.cache_hit, other.cost_usd) == (True, 0.0)


async def test_a_call_that_may_have_been_billed_is_counted_and_never_repeated(scripted):
    client, calls = scripted([botocore.exceptions.ReadTimeoutError(endpoint_url="x"), OK])
    with pytest.raises(ModelCallFailed, match="unconfirmed_attempt: ReadTimeoutError") as one:
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert one.value.charged_usd == BACKGROUND.price_usd and len(calls) == 1
    with pytest.raises(ModelCallFailed, match="unconfirmed_attempt") as again:
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")  # redelivered
    assert again.value.charged_usd == BACKGROUND.price_usd and len(calls) == 1


async def test_model_errors_are_retried_once(scripted):
    client, calls = scripted([_client_error("ModelErrorException", 424)])
    with pytest.raises(ModelCallFailed, match="retries_exhausted: ModelErrorException after 2"):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert len(calls) == 2


async def test_attempts_stop_at_the_setting(scripted):
    client, calls = scripted([_client_error("ServiceUnavailableException", 503)])
    with pytest.raises(ModelCallFailed) as caught:
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert caught.value.reason == "retries_exhausted: ServiceUnavailableException after 4 attempts"
    assert caught.value.attempts == 4 == len(calls)


async def test_a_permanent_error_is_not_retried(scripted):
    client, calls = scripted([_client_error("ValidationException", 400)])
    with pytest.raises(ModelCallFailed, match="rejected: ValidationException: "):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert len(calls) == 1


async def test_retired_and_unknown_models_never_reach_the_network(scripted):
    client, calls = scripted([OK])
    for model_id in (NOVA.id, "acme.nothing-v1"):
        with pytest.raises(ModelCallFailed, match="model_not_callable"):
            await client.invoke(model_id, _prepared(), "req-1")
    assert calls == []


async def test_a_call_cut_off_by_a_crash_is_accounted_as_paid_and_never_repeated(scripted):
    client, calls = scripted([OK])
    crashed = client._invoke_sync

    def dies_mid_call(model_id: str, body: str) -> bytes:
        crashed(model_id, body)  # Bedrock did the work (and billed it)...
        raise asyncio.CancelledError  # ...but the worker never saw the answer
    client._invoke_sync = dies_mid_call
    with pytest.raises(asyncio.CancelledError):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    client._invoke_sync = crashed
    with pytest.raises(ModelCallFailed, match="unconfirmed_attempt") as caught:
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")  # the redelivery
    assert caught.value.charged_usd == BACKGROUND.price_usd and len(calls) == 1
    other = await client.invoke(BACKGROUND.id, _prepared(), "req-2")  # another request pays
    assert other.paid and len(calls) == 2


async def test_unbilled_failures_and_unreserved_requests(scripted):
    client, calls = scripted([_client_error("ValidationException", 400), OK])
    with pytest.raises(ModelCallFailed, match="rejected"):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    with pytest.raises(ModelCallFailed, match="not_reserved"):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1", may_pay=False)
    retried = await client.invoke(BACKGROUND.id, _prepared(), "req-1")  # not billed: may call
    assert retried.paid and len(calls) == 2


async def test_the_check_before_paying_runs_before_a_new_call_only(scripted):
    # streams.recovery refuses a paid call (by raising) on a worker whose broker was lost.
    client, calls = scripted([OK])
    checks: list[str] = []

    async def refuse() -> None:
        checks.append("refused")
        raise RuntimeError("the broker was lost")

    guard = {"check": refuse}
    client._before_paying = lambda: guard["check"]
    with pytest.raises(RuntimeError, match="the broker was lost"):
        await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert (checks, calls) == (["refused"], [])           # no call, no attempt marker
    guard["check"] = None
    paid = await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert paid.paid and len(calls) == 1
    guard["check"] = refuse
    cached = await client.invoke(BACKGROUND.id, _prepared(), "req-1")
    assert cached.cache_hit and checks == ["refused"]      # a cached result needs no check
