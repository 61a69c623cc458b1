"""S3-protocol object store (SeaweedFS in the embedded stack, S3 in production).

Object reads and writes - ten or so per photo - go through obstore (the Rust
``object_store`` crate): natively async, no worker thread per call, a quarter of boto3's
CPU per request (docs/decisions/0003-obstore-for-objects.md). Bucket administration
(create at start, ping) stays on boto3, off the hot path. Objects are addressed by
``s3://bucket/key`` URIs in events.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

import boto3
import botocore.exceptions
import obstore
import obstore.exceptions
from botocore.config import Config
from obstore.store import S3Store

from imaging.errors import ObjectMissing, PermanentError, ServiceUnavailable
from services.botocore_errors import TRANSPORT_ERRORS
from services.object_cache import ObjectCache
from streams.metrics import OBJECT_REQUESTS
from streams.settings import Settings

if TYPE_CHECKING:
    from obstore.store import S3Credential

_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
# Another worker created the bucket between our HEAD and our CREATE: it is there.
_BUCKET_EXISTS_CODES = {"BucketAlreadyOwnedByYou"}
_RETRYABLE_CODES = {
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
# obstore reports other HTTP failures as GenericError("... status code: 400 Bad Request ...").
_STATUS = re.compile(r"status code: (\d{3})")
# A client error that a later attempt can cure: timeout, conflict of two concurrent
# create-only PUTs of one key, throttling.
_RETRYABLE_STATUSES = {408, 409, 429}
# obstore raises the builtin FileNotFoundError for a missing key or bucket.
_NOT_FOUND = (FileNotFoundError, obstore.exceptions.NotFoundError)

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


class ObjectClient(Protocol):
    """The object operations the pipeline needs, with the project's error classes."""

    async def put(self, uri: ObjectUri, data: bytes, content_type: str, *,
                  create_only: bool) -> bool:
        """Write; with ``create_only`` an existing object is left alone and False returned."""

    async def get(self, uri: ObjectUri) -> bytes: ...

    async def exists(self, uri: ObjectUri) -> bool: ...

    async def keys(self, bucket: str, prefix: str) -> list[str]: ...

    async def delete(self, uri: ObjectUri) -> None: ...

    def close(self) -> None: ...


class ObjectStore:
    """The project's object store: obstore for objects, boto3 for buckets.

    ``keep=True`` marks an object as immutable (content-addressed, or derived from a job
    whose bytes are deterministic): it is then kept in a bounded in-process cache
    (``services.object_cache``) and later reads of it with ``keep=True`` skip the store.
    """

    def __init__(self, settings: Settings) -> None:
        self.cache = ObjectCache(settings.object_cache_bytes)
        self.objects: ObjectClient = S3Objects(settings)
        self._buckets_client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key or None,
            config=Config(connect_timeout=3, read_timeout=30,
                          retries={"mode": "standard", "max_attempts": 3},
                          s3={"addressing_style": "path"}),
        )
        self._buckets = (settings.originals_bucket, settings.enhanced_bucket,
                         settings.ai_cache_bucket)

    async def ensure_buckets(self) -> None:
        """Create the project's buckets if they are missing (idempotent)."""
        for bucket in self._buckets:
            await _admin(self._ensure_bucket, bucket)

    async def put_if_absent(
        self, uri: ObjectUri, data: bytes, content_type: str, *, keep: bool = True
    ) -> bool:
        """Store ``data`` unless the object exists; True when it was written now.

        Keys are content hashes, so an existing object already holds these bytes. One
        conditional PUT (``If-None-Match: *``, S3's atomic create-only write) instead of a
        HEAD then a PUT: one round trip, and no window between the check and the write.
        """
        OBJECT_REQUESTS.labels("put").inc()
        written = await self.objects.put(uri, data, content_type, create_only=True)
        if keep:
            self.cache.put(str(uri), data)
        return written

    async def put(self, uri: ObjectUri, data: bytes, content_type: str, *,
                  keep: bool = False) -> None:
        """Write (or overwrite) an object: stable aliases and intermediates."""
        OBJECT_REQUESTS.labels("put").inc()
        await self.objects.put(uri, data, content_type, create_only=False)
        if keep:
            self.cache.put(str(uri), data)

    async def exists(self, uri: ObjectUri) -> bool:
        OBJECT_REQUESTS.labels("head").inc()
        return await self.objects.exists(uri)

    async def get(self, uri: ObjectUri, *, keep: bool = False) -> bytes:
        """The object's bytes; ``keep``: immutable, so served from and kept in the cache."""
        if keep and (cached := self.cache.get(str(uri))) is not None:
            return cached
        OBJECT_REQUESTS.labels("get").inc()
        data = await self.objects.get(uri)
        if keep:
            self.cache.put(str(uri), data)
        return data

    async def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (deletion and audits; never on the hot path)."""
        OBJECT_REQUESTS.labels("list").inc()
        return await self.objects.keys(bucket, prefix)

    async def delete(self, uri: ObjectUri) -> None:
        """Remove an object (a missing one is not an error) and forget any cached copy."""
        self.cache.forget(str(uri))
        OBJECT_REQUESTS.labels("delete").inc()
        await self.objects.delete(uri)

    def close(self) -> None:
        """Release the clients before the process exits: obstore stores still alive while
        the interpreter shuts down aborted a script (SIGABRT) in 5 exits of 20, none
        once they were dropped first. Not seen through this class or in workers."""
        self.objects.close()
        self._buckets_client.close()

    async def ping(self) -> None:
        await _admin(self._buckets_client.list_buckets)

    def _ensure_bucket(self, bucket: str) -> None:
        try:
            self._buckets_client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES:
                raise
            try:
                self._buckets_client.create_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc) not in _BUCKET_EXISTS_CODES:
                    raise


def _static_credentials(access_key: str, secret_key: str) -> Callable[[], S3Credential]:
    """An obstore credential provider for fixed keys (no token; never expires)."""
    credential: S3Credential = {"access_key_id": access_key, "secret_access_key": secret_key,
                                "token": None, "expires_at": None}

    def provide() -> S3Credential:
        return credential

    return provide


class S3Objects:
    """Objects over the S3 API through obstore, one ``S3Store`` per bucket.

    obstore retries connection failures and 5xx answers itself, briefly (two retries
    within 10 s); longer outages surface as ServiceUnavailable and the stages retry
    with their own backoff. Without configured keys, credentials come from the
    environment as for boto3 (variables, web identity, instance or container roles).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stores: dict[str, S3Store] = {}

    def _store(self, bucket: str) -> S3Store:
        store = self._stores.get(bucket)
        if store is None:
            s = self._settings
            options: dict = {"region": s.s3_region}
            if s.s3_endpoint:
                options["endpoint"] = s.s3_endpoint
                options["virtual_hosted_style_request"] = False
            if s.s3_access_key:
                # Configured keys are the whole credential, as for boto3: obstore would
                # otherwise sign with an AWS_SESSION_TOKEN left in the environment (from
                # someone's SSO login, say) and every request would be refused.
                options["credential_provider"] = _static_credentials(s.s3_access_key,
                                                                     s.s3_secret_key)
            store = S3Store(
                bucket,
                client_options={"allow_http": bool(s.s3_endpoint and
                                                   s.s3_endpoint.startswith("http://")),
                                "connect_timeout": "3s", "timeout": "30s"},
                retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=10),
                              "backoff": {"init_backoff": timedelta(milliseconds=100),
                                          "max_backoff": timedelta(seconds=2), "base": 2}},
                **options,
            )
            self._stores[bucket] = store
        return store

    async def put(self, uri: ObjectUri, data: bytes, content_type: str, *,
                  create_only: bool) -> bool:
        try:
            await obstore.put_async(self._store(uri.bucket), uri.key, data,
                                    mode="create" if create_only else "overwrite",
                                    attributes={"Content-Type": content_type})
        except obstore.exceptions.AlreadyExistsError:
            return False
        except Exception as exc:
            raise _wrapped(exc, uri) from exc
        return True

    async def get(self, uri: ObjectUri) -> bytes:
        try:
            result = await obstore.get_async(self._store(uri.bucket), uri.key)
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise _wrapped(exc, uri) from exc

    async def exists(self, uri: ObjectUri) -> bool:
        try:
            await obstore.head_async(self._store(uri.bucket), uri.key)
        except _NOT_FOUND:
            return False
        except Exception as exc:
            raise _wrapped(exc, uri) from exc
        return True

    async def keys(self, bucket: str, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            async for batch in obstore.list(self._store(bucket), prefix=prefix):
                found.extend(item["path"] for item in batch)
        except Exception as exc:
            raise _wrapped(exc, ObjectUri(bucket, prefix or "/")) from exc
        return found

    async def delete(self, uri: ObjectUri) -> None:
        try:
            await obstore.delete_async(self._store(uri.bucket), uri.key)
        except _NOT_FOUND:
            return
        except Exception as exc:
            raise _wrapped(exc, uri) from exc

    def close(self) -> None:
        self._stores.clear()  # the last references: the stores and their pools drop here


def _wrapped(exc: Exception, uri: ObjectUri) -> Exception:
    """obstore's exception as one of the project's classes."""
    message = str(exc).split("\n", 1)[0]
    if isinstance(exc, _NOT_FOUND):
        return ObjectMissing(f"object store: {uri} not found")
    if isinstance(exc, (obstore.exceptions.PermissionDeniedError,
                        obstore.exceptions.UnauthenticatedError,
                        obstore.exceptions.InvalidPathError,
                        obstore.exceptions.NotSupportedError)):
        return PermanentError(f"object store: {uri}: {message}")
    status = _STATUS.search(str(exc))
    if status and 400 <= int(status.group(1)) < 500 \
            and int(status.group(1)) not in _RETRYABLE_STATUSES:
        return PermanentError(f"object store: {uri}: {message}")
    return ServiceUnavailable(f"object store unreachable or failing: {uri}: {message}")


async def _admin(fn, /, *args, **kwargs):
    """A boto3 bucket call in a thread, its errors as the project's classes."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except botocore.exceptions.ClientError as exc:
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        if code in _MISSING_CODES:
            raise ObjectMissing(f"object store: {code}: {message}") from exc
        if code in _RETRYABLE_CODES:
            raise ServiceUnavailable(f"object store: {code}: {message}") from exc
        raise PermanentError(f"object store: {code}: {message}") from exc
    except TRANSPORT_ERRORS as exc:
        raise ServiceUnavailable(f"object store unreachable: {exc}") from exc


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
