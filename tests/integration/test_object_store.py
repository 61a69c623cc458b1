"""The object store against the embedded stack's S3 server, through the production client."""

import time
import uuid
from collections.abc import Iterator

import pytest

from imaging.errors import ObjectMissing, PermanentError, ServiceUnavailable
from services.object_store import ObjectStore, ObjectUri
from streams.settings import Settings


@pytest.fixture()
def store(stack) -> Iterator[ObjectStore]:
    _stack, settings = stack
    store = ObjectStore(settings)
    yield store
    store.close()


async def test_create_only_put_writes_once_and_reads_back(store, stack):
    _stack, settings = stack
    await store.ensure_buckets()
    uri = ObjectUri(settings.enhanced_bucket, f"tests/{uuid.uuid4().hex}/a.jpg")
    assert await store.put_if_absent(uri, b"first", "image/jpeg", keep=False) is True
    assert await store.put_if_absent(uri, b"first", "image/jpeg", keep=False) is False
    assert await store.get(uri) == b"first"
    assert await store.exists(uri)
    head = store._buckets_client.head_object(Bucket=uri.bucket, Key=uri.key)
    assert head["ContentType"] == "image/jpeg"


async def test_overwrite_replaces_the_bytes(store, stack):
    _stack, settings = stack
    await store.ensure_buckets()
    uri = ObjectUri(settings.enhanced_bucket, f"tests/{uuid.uuid4().hex}/current.jpg")
    await store.put(uri, b"v1", "image/jpeg")
    await store.put(uri, b"v2", "image/jpeg")
    assert await store.get(uri) == b"v2"


async def test_a_missing_object_or_bucket_is_object_missing(store, stack):
    _stack, settings = stack
    assert not await store.exists(ObjectUri(settings.enhanced_bucket, "tests/none.jpg"))
    with pytest.raises(ObjectMissing):
        await store.get(ObjectUri(settings.enhanced_bucket, f"tests/{uuid.uuid4().hex}"))
    with pytest.raises(ObjectMissing):
        await store.get(ObjectUri(f"no-bucket-{uuid.uuid4().hex[:8]}", "k"))


async def test_wrong_credentials_are_permanent(stack):
    _stack, settings = stack
    bad = ObjectStore(Settings(**{**settings.model_dump(), "s3_secret_key": "wrong"}))
    with pytest.raises(PermanentError, match="403"):
        await bad.put(ObjectUri(settings.enhanced_bucket, "tests/x"), b"x", "image/jpeg")


async def test_a_session_token_left_in_the_environment_is_not_signed_along(stack, monkeypatch):
    """Configured keys are the whole credential (as for boto3), whatever AWS_* says."""
    _stack, settings = stack
    monkeypatch.setenv("AWS_SESSION_TOKEN", "someone-elses-sso-session")
    store = ObjectStore(settings)
    try:
        uri = ObjectUri(settings.enhanced_bucket, f"tests/{uuid.uuid4().hex}/token.jpg")
        await store.put(uri, b"signed with the configured keys only", "image/jpeg")
        assert await store.get(uri) == b"signed with the configured keys only"
    finally:
        store.close()


async def test_an_unreachable_store_is_retryable_and_fails_fast():
    down = ObjectStore(Settings(s3_endpoint="http://127.0.0.1:1"))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="unreachable"):
        await down.get(ObjectUri("b", "k"))
    assert time.monotonic() - started < 15  # obstore's own retries are bounded (10 s)
