"""Paid model results in the object store, keyed by (input hash, model, body parameters).

Why: the same work must never be paid twice (replays, redeliveries, duplicate photos), and
a worker that crashes after paying but before settling its budget must find, on
redelivery, both the result and what that request paid. So a paid result is written as:

* ``bedrock/<model>/<key>.<ext>``                  the image the model returned;
* ``bedrock/<model>/<key>.paid/<request_id>.json``  the receipt of the request that paid;
* ``bedrock/<model>/<key>.json``                   the record that commits the entry.

The record is written last: an entry without it is a miss. A lookup by a request that paid
for the entry (its receipt exists) recovers its cost; any other request gets it for free.

Before each call the client also writes ``bedrock/<model>/<key>.attempt/<request_id>.json``
(state ``calling``) and marks it ``not_billed`` when the call ends without an image. A
``calling`` marker without a result means a worker died mid-call: Bedrock may have billed
that call (it has no idempotency token), so the request must not call again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from imaging.errors import ObjectMissing
from services.object_store import ObjectStore, ObjectUri
from streams.metrics import AI_CACHE


@dataclass(frozen=True)
class CachedResult:
    output: bytes
    output_format: str
    cost_usd: float  # what the asking request paid for it (0.0 when another request did)
    record: dict[str, Any]


def cache_key(image: bytes, model_id: str, body_params: dict[str, Any]) -> str:
    """sha256 over the input's sha256, the model id and the canonical JSON of the params."""
    canonical = json.dumps(body_params, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256()
    for part in (hashlib.sha256(image).hexdigest(), model_id, canonical):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


# by-image/<image_id>/<model_id>/<key>: which entries a photo's AI steps produced.
BY_IMAGE = "by-image/"


class AiCache:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    async def lookup(self, model_id: str, key: str, request_id: str) -> CachedResult | None:
        receipt = await self._json(self._receipt(model_id, key, request_id))
        record = receipt or await self._json(self._record(model_id, key))
        if record is None:
            AI_CACHE.labels("miss").inc()
            return None
        try:
            output = await self._store.get(self._image(model_id, key, record["output_format"]))
        except ObjectMissing:  # removed behind our back: pay again rather than fail
            AI_CACHE.labels("miss").inc()
            return None
        AI_CACHE.labels("recovered" if receipt else "hit").inc()
        return CachedResult(output=output, output_format=record["output_format"],
                            cost_usd=float(receipt["cost_usd"]) if receipt else 0.0,
                            record=record)

    async def store(self, model_id: str, key: str, request_id: str, output: bytes,
                    output_format: str, cost_usd: float, params: dict[str, Any],
                    image_id: str | None = None) -> None:
        """Write a paid result: image, receipt, then the record that commits it; with
        ``image_id``, an index entry so deleting that photo finds what was made from it."""
        record = {"request_id": request_id, "cost_usd": cost_usd, "model": model_id,
                  "params": params, "output_format": output_format,
                  "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        document = json.dumps(record, sort_keys=True).encode()
        await self._store.put(self._image(model_id, key, output_format), output,
                              f"image/{output_format}")
        await self._store.put(self._receipt(model_id, key, request_id), document,
                              "application/json")
        await self._store.put(self._record(model_id, key), document, "application/json")
        if image_id:
            await self._store.put(ObjectUri(self._bucket, f"{BY_IMAGE}{image_id}/{model_id}/{key}"),
                                  b"", "application/octet-stream")
        AI_CACHE.labels("stored").inc()

    async def forget_image(self, image_id: str) -> int:
        """Delete every entry made from ``image_id``'s photo; the number of objects."""
        removed = 0
        for index_key in await self._store.keys(self._bucket, f"{BY_IMAGE}{image_id}/"):
            model_id, key = index_key.removeprefix(f"{BY_IMAGE}{image_id}/").split("/", 1)
            for entry in await self._store.keys(self._bucket, f"bedrock/{model_id}/{key}"):
                await self._store.delete(ObjectUri(self._bucket, entry))
                removed += 1
            await self._store.delete(ObjectUri(self._bucket, index_key))
            removed += 1
        return removed

    async def begin_attempt(self, model_id: str, key: str, request_id: str) -> None:
        await self._put_attempt(model_id, key, request_id, "calling")

    async def end_attempt_unbilled(self, model_id: str, key: str, request_id: str) -> None:
        await self._put_attempt(model_id, key, request_id, "not_billed")

    async def unconfirmed_attempt(self, model_id: str, key: str, request_id: str) -> bool:
        """True when this request started a call whose outcome nobody recorded."""
        marker = await self._json(self._attempt(model_id, key, request_id))
        return bool(marker and marker.get("state") == "calling")

    async def _put_attempt(self, model_id: str, key: str, request_id: str, state: str) -> None:
        document = json.dumps({"state": state, "at": time.time()}).encode()
        await self._store.put(self._attempt(model_id, key, request_id), document,
                              "application/json")

    def _attempt(self, model_id: str, key: str, request_id: str) -> ObjectUri:
        name = quote(request_id, safe="")
        return ObjectUri(self._bucket, f"bedrock/{model_id}/{key}.attempt/{name}.json")

    async def _json(self, uri: ObjectUri) -> dict[str, Any] | None:
        """The JSON document at ``uri``; None when missing or unreadable (a miss)."""
        try:
            return json.loads(await self._store.get(uri))
        except (ObjectMissing, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def _image(self, model_id: str, key: str, output_format: str) -> ObjectUri:
        ext = "jpg" if output_format == "jpeg" else output_format
        return ObjectUri(self._bucket, f"bedrock/{model_id}/{key}.{ext}")

    def _receipt(self, model_id: str, key: str, request_id: str) -> ObjectUri:
        name = quote(request_id, safe="")
        return ObjectUri(self._bucket, f"bedrock/{model_id}/{key}.paid/{name}.json")

    def _record(self, model_id: str, key: str) -> ObjectUri:
        return ObjectUri(self._bucket, f"bedrock/{model_id}/{key}.json")
