"""S3-protocol object store (SeaweedFS in the embedded stack, S3 in production).

boto3 is synchronous; every call runs in a worker thread so the event loop never waits
on the network. Objects are addressed by ``s3://bucket/key`` URIs in events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import boto3
import botocore.exceptions
from botocore.config import Config

from services.object_cache import ObjectCache
from streams.errors import ObjectMissing, PermanentError, ServiceUnavailable
from streams.settings import Settings

_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
# Another worker created the bucket between our HEAD and our CREATE: it is there.
_BUCKET_EXISTS_CODES = {"BucketAlreadyOwnedByYou"}
# A create-only PUT (If-None-Match: *) found the key taken: the bytes are already there.
_EXISTS_CODES = {"412", "PreconditionFailed"}
_RETRYABLE_CODES = {
    "ConditionalRequestConflict",  # a concurrent create-only PUT of the same key
    "500",
    "502",
    "503",
    "504",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "Throttling",
}


class _AlreadyExists(Exception):
    """A create-only PUT found the object in place."""


@dataclass(frozen=True)
class ObjectUri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> ObjectUri:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise PermanentError(f"not an s3:// object URI: {uri!r}")
        bucket, key = uri[5:].split("/", 1)
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class ObjectStore:
    """Thin async facade over a boto3 S3 client with the project's error classes.

    ``keep=True`` marks an object as immutable (content-addressed, or derived from a job
    whose bytes are deterministic): it is then kept in a bounded in-process cache
    (``services.object_cache``) and later reads of it with ``keep=True`` skip the store.
    """

    def __init__(self, settings: Settings) -> None:
        self.cache = ObjectCache(settings.object_cache_bytes)
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key or None,
            config=Config(
                connect_timeout=3,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
                s3={"addressing_style": "path"},
                # Our calls are typed by this module; botocore's own check of every
                # request's parameters is ~0.5 ms of CPU per call, ten calls per photo.
                parameter_validation=False,
                # botocore >= 1.36 computes a CRC32 of every body it sends and checks the one
                # of every body it reads: pure CPU per photo on our own bucket, where TLS and
                # the content hashes in the keys already guard the bytes.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._buckets = (settings.originals_bucket, settings.enhanced_bucket,
                         settings.ai_cache_bucket)

    async def ensure_buckets(self) -> None:
        """Create the project's buckets if they are missing (idempotent)."""
        for bucket in self._buckets:
            await self._call(self._ensure_bucket, bucket)

    async def put_if_absent(
        self, uri: ObjectUri, data: bytes, content_type: str, *, keep: bool = True
    ) -> bool:
        """Store ``data`` unless the object exists; True when it was written now.

        Keys are content hashes, so an existing object already holds these bytes. One
        conditional PUT (``If-None-Match: *``, S3's atomic create-only write) instead of a
        HEAD then a PUT: one round trip, and no window between the check and the write.
        """
        try:
            await self._call(
                self._client.put_object,
                Bucket=uri.bucket,
                Key=uri.key,
                Body=data,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except _AlreadyExists:
            written = False
        else:
            written = True
        if keep:
            self.cache.put(str(uri), data)
        return written

    async def put(self, uri: ObjectUri, data: bytes, content_type: str, *,
                  keep: bool = False) -> None:
        """Write (or overwrite) an object: stable aliases and intermediates."""
        await self._call(self._client.put_object, Bucket=uri.bucket, Key=uri.key, Body=data,
                         ContentType=content_type)
        if keep:
            self.cache.put(str(uri), data)

    async def exists(self, uri: ObjectUri) -> bool:
        try:
            await self._call(self._client.head_object, Bucket=uri.bucket, Key=uri.key)
        except ObjectMissing:
            return False
        return True

    async def get(self, uri: ObjectUri, *, keep: bool = False) -> bytes:
        """The object's bytes; ``keep``: immutable, so served from and kept in the cache."""
        if keep and (cached := self.cache.get(str(uri))) is not None:
            return cached

        def read() -> bytes:
            return self._client.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()

        data = await self._call(read)
        if keep:
            self.cache.put(str(uri), data)
        return data

    async def ping(self) -> None:
        await self._call(self._client.list_buckets)

    def _ensure_bucket(self, bucket: str) -> None:
        try:
            self._client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES:
                raise
            try:
                self._client.create_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc) not in _BUCKET_EXISTS_CODES:
                    raise

    async def _call(self, fn, /, *args, **kwargs):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except botocore.exceptions.ClientError as exc:
            code = _error_code(exc)
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            if code in _EXISTS_CODES:
                raise _AlreadyExists(message) from exc
            if code in _MISSING_CODES:
                raise ObjectMissing(f"object store: {code}: {message}") from exc
            if code in _RETRYABLE_CODES:
                raise ServiceUnavailable(f"object store: {code}: {message}") from exc
            raise PermanentError(f"object store: {code}: {message}") from exc
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError,
        ) as exc:
            raise ServiceUnavailable(f"object store unreachable: {exc}") from exc


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
