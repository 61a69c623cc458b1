"""ObjectStore with ``keep``: immutable objects are served from memory after a write or read."""

import botocore.exceptions

from services.object_store import ObjectStore, ObjectUri
from streams.settings import Settings


class FakeObjects:
    """An in-memory ObjectClient that records the calls reaching the store."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []

    async def put(self, uri, data, content_type, *, create_only):
        self.calls.append("put")
        if create_only and str(uri) in self.objects:
            return False
        self.objects[str(uri)] = data
        return True

    async def get(self, uri):
        self.calls.append("get")
        return self.objects[str(uri)]

    async def exists(self, uri):
        return str(uri) in self.objects

    def close(self):
        self.calls.append("close")


def _store() -> tuple[ObjectStore, FakeObjects]:
    store = ObjectStore(Settings(object_cache_bytes=1000))
    store.objects = FakeObjects()
    return store, store.objects


async def test_kept_writes_and_reads_are_served_from_memory():
    store, client = _store()
    uri = ObjectUri("b", "work/job/enhanced.jpg")
    await store.put(uri, b"pixels", "image/jpeg", keep=True)
    assert await store.get(uri, keep=True) == b"pixels"
    assert client.calls == ["put"]
    assert await store.get(uri) == b"pixels"  # not kept: always asks the store
    assert client.calls == ["put", "get"]


async def test_create_only_put_reports_an_existing_object_and_keeps_its_bytes():
    store, client = _store()
    uri = ObjectUri("b", "originals/ab/abc.jpg")
    assert await store.put_if_absent(uri, b"photo", "image/jpeg") is True
    store.cache = type(store.cache)(1000)  # another worker: nothing in memory
    assert await store.put_if_absent(uri, b"photo", "image/jpeg") is False
    assert await store.get(uri, keep=True) == b"photo"
    assert client.calls == ["put", "put"]


async def test_aliases_are_never_kept():
    store, _client = _store()
    uri = ObjectUri("b", "enhanced/x/current-large.jpg")
    await store.put(uri, b"v1", "image/jpeg")
    assert str(uri) not in store.cache


class RacingBucketClient:
    """Another worker creates the bucket between this one's HEAD and CREATE."""

    def __init__(self, create_code: str):
        self.create_code = create_code

    def head_bucket(self, Bucket):
        raise botocore.exceptions.ClientError({"Error": {"Code": "404"}}, "HeadBucket")

    def create_bucket(self, Bucket):
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": self.create_code, "Message": "taken"}}, "CreateBucket")


async def test_a_bucket_created_meanwhile_by_another_worker_is_fine():
    store = ObjectStore(Settings())
    store._buckets_client = RacingBucketClient("BucketAlreadyOwnedByYou")
    await store.ensure_buckets()  # seen: two workers starting together crashed an agent


async def test_a_bucket_owned_by_someone_else_is_an_error():
    import pytest

    from imaging.errors import PermanentError

    store = ObjectStore(Settings())
    store._buckets_client = RacingBucketClient("BucketAlreadyExists")
    with pytest.raises(PermanentError, match="BucketAlreadyExists"):
        await store.ensure_buckets()


def test_close_releases_the_object_client():
    store, client = _store()
    store.close()
    assert client.calls == ["close"]
