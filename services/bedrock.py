"""Amazon Bedrock runtime client for the AI steps: cache first, then InvokeModel with retries.

Why its own retry loop: botocore's retries would hide attempts from metrics and could not
follow AWS's table (ModelErrorException at most once, throttling with backoff and full
jitter). Why its own threads: boto3 blocks for up to ``bedrock_timeout_seconds`` per call,
and parking that in asyncio's default executor would starve the object store's calls.
A paid result is cached before it is returned, so a crash between paying and settling
the budget is recovered by the same request id without paying again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import botocore.exceptions
from botocore.config import Config

from imaging.ai_io import PreparedInput
from imaging.errors import ImgstreamError
from services.ai_cache import AiCache, cache_key
from services.bedrock_requests import (
    POSSIBLY_BILLED,
    ModelCallFailed,
    Retry,
    build_body,
    classify,
    failure_reason,
    parse_response,
    sniff_format,
)
from services.botocore_errors import TRANSPORT_ERRORS
from services.model_catalog import ModelCatalog, ModelEntry
from services.object_store import ObjectStore
from streams.metrics import AI_CACHE, BEDROCK_CALL_SECONDS, BEDROCK_CALLS, BEDROCK_RETRIES
from streams.settings import Settings

__all__ = ["BedrockClient", "ModelCallFailed", "ModelInvocation"]

log = logging.getLogger(__name__)

# Concurrent InvokeModel calls per process (threads and pooled HTTP connections).
CALL_THREADS = 16
_PLACEHOLDER_CREDENTIALS = ("imgstream-local", "imgstream-local-secret")


@dataclass(frozen=True)
class ModelInvocation:
    model_id: str
    output: bytes  # image bytes the model returned (base64-decoded)
    output_format: str  # "png" | "jpeg" | "webp"
    # What this result cost this request: the price when paid now; on a cache hit what the
    # same request_id paid earlier (redelivery after a crash), else 0.0.
    cost_usd: float
    paid: bool  # a billable call was made just now
    cache_hit: bool
    attempts: int
    latency_ms: float
    cache_key: str


class BedrockClient:
    def __init__(self, settings: Settings, catalog: ModelCatalog, store: ObjectStore,
                 before_paying: Callable[[], Callable[[], Awaitable[None]] | None] | None = None
                 ) -> None:
        self._settings = settings
        # Gives the check awaited before each new paid call, if any (it raises to refuse).
        self._before_paying = before_paying
        self._catalog = catalog
        self._cache = AiCache(store, settings.ai_cache_bucket)
        access, secret = settings.bedrock_access_key, settings.bedrock_secret_key
        if access is None and settings.bedrock_endpoint and not (
                os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            access, secret = _PLACEHOLDER_CREDENTIALS  # the emulator only needs a signature
        self._client = boto3.client(
            "bedrock-runtime",
            endpoint_url=settings.bedrock_endpoint or None,
            region_name=settings.bedrock_region,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=Config(
                retries={"total_max_attempts": 1},
                read_timeout=settings.bedrock_timeout_seconds,
                connect_timeout=min(5.0, settings.bedrock_timeout_seconds),
                max_pool_connections=CALL_THREADS,
            ),
        )
        self._executor = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="bedrock")
        self._random = random.Random()

    async def invoke(self, model_id: str, prepared: PreparedInput, request_id: str,
                     may_pay: bool = True, image_id: str | None = None) -> ModelInvocation:
        """The model's image for ``prepared``: from the cache, or paid for now.

        ``may_pay=False`` (no budget reserved for it) accepts a cached result only.
        Raises ModelCallFailed (permanent: fall back to the local op) or, when the cache
        cannot be read, a RetryableError from the object store.
        """
        started = time.perf_counter()
        model = self._catalog.models.get(model_id)
        if model is None or not model.callable:
            BEDROCK_CALLS.labels(model_id, "model_not_callable").inc()
            state = "not in the model catalog" if model is None else model.lifecycle
            raise ModelCallFailed(f"model_not_callable: {model_id} is {state}")
        key = cache_key(prepared.image, model_id, prepared.body_params)
        cached = await self._cache.lookup(model_id, key, request_id)
        if cached is not None:
            BEDROCK_CALLS.labels(model_id, "cache_hit").inc()
            return ModelInvocation(model_id, cached.output, cached.output_format,
                                   cached.cost_usd, paid=False, cache_hit=True, attempts=0,
                                   latency_ms=_ms_since(started), cache_key=key)
        if await self._cache.unconfirmed_attempt(model_id, key, request_id):
            # A worker died while this request's call was in flight: it may have been
            # billed. Never pay twice; account for it as paid and fall back.
            BEDROCK_CALLS.labels(model_id, "unconfirmed_attempt").inc()
            raise ModelCallFailed(
                f"unconfirmed_attempt: an earlier {model_id} call of this request may have "
                "been billed (its worker stopped mid-call); not calling again",
                charged_usd=model.price_usd)
        if not may_pay:
            BEDROCK_CALLS.labels(model_id, "not_reserved").inc()
            raise ModelCallFailed(f"not_reserved: no budget reserved for a new {model_id} call")
        guard = self._before_paying() if self._before_paying else None
        if guard is not None:
            await guard()
        await self._cache.begin_attempt(model_id, key, request_id)
        try:
            output, attempts = await self._call(model, prepared)
            output_format = sniff_format(output)
        except ModelCallFailed as exc:
            BEDROCK_CALLS.labels(model_id, exc.reason.split(":", 1)[0]).inc()
            if not exc.charged_usd:  # a possibly billed attempt keeps its marker: no re-call
                await self._cache.end_attempt_unbilled(model_id, key, request_id)
            raise
        BEDROCK_CALLS.labels(model_id, "paid").inc()
        try:
            await self._cache.store(model_id, key, request_id, output, output_format,
                                    model.price_usd, prepared.body_params, image_id)
        except ImgstreamError as exc:  # the result is paid for: hand it over regardless
            AI_CACHE.labels("store_failed").inc()
            log.warning("AI cache write failed for %s/%s: %s", model_id, key, exc)
        return ModelInvocation(model_id, output, output_format, model.price_usd, paid=True,
                               cache_hit=False, attempts=attempts,
                               latency_ms=_ms_since(started), cache_key=key)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def _call(self, model: ModelEntry, prepared: PreparedInput) -> tuple[bytes, int]:
        """InvokeModel until an image comes back; (image bytes, attempts made)."""
        body = json.dumps(build_body(model, base64.b64encode(prepared.image).decode("ascii"),
                                     prepared.body_params))
        loop = asyncio.get_running_loop()
        max_attempts = self._settings.bedrock_max_attempts
        retried_once: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            try:
                raw = await loop.run_in_executor(self._executor, self._invoke_sync,
                                                 model.id, body)
            except botocore.exceptions.ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code") or "Unknown")
                message = str(error.get("Message") or exc)
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            except TRANSPORT_ERRORS as exc:  # bedrock_requests.classify decides by name
                code, message, status = type(exc).__name__, str(exc), None
            else:
                try:
                    return parse_response(model, raw), attempt
                except ModelCallFailed as exc:
                    raise ModelCallFailed(exc.reason, attempt) from None
            if code in POSSIBLY_BILLED:
                raise ModelCallFailed(
                    f"unconfirmed_attempt: {code} after the request was sent; it may have "
                    "been billed, counted as paid and not retried", attempt,
                    charged_usd=model.price_usd)
            retry = classify(code, status)
            if retry is Retry.NEVER:
                raise ModelCallFailed(failure_reason(code, message), attempt)
            if attempt == max_attempts or (retry is Retry.ONCE and code in retried_once):
                raise ModelCallFailed(f"retries_exhausted: {code} after {attempt} attempts",
                                      attempt)
            if retry is Retry.ONCE:
                retried_once.add(code)
            BEDROCK_RETRIES.labels(model.id, code).inc()
            log.info("%s: %s (attempt %d), retrying: %s", model.id, code, attempt, message)
            await asyncio.sleep(self._backoff(attempt))

    def _invoke_sync(self, model_id: str, body: str) -> bytes:
        started = time.perf_counter()
        try:
            response = self._client.invoke_model(modelId=model_id, body=body,
                                                 contentType="application/json",
                                                 accept="application/json")
            return response["body"].read()
        finally:
            BEDROCK_CALL_SECONDS.labels(model_id).observe(time.perf_counter() - started)

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(attempt-1))]."""
        ceiling = min(self._settings.bedrock_backoff_max_seconds,
                      self._settings.bedrock_backoff_base_seconds * 2 ** (attempt - 1))
        return self._random.uniform(0.0, ceiling)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
