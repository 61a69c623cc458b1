"""The immutable-object cache: LRU, bounded by bytes."""

import pytest

from services.object_cache import ObjectCache


def test_hit_and_miss_are_counted():
    cache = ObjectCache(100)
    assert cache.get("s3://b/a") is None
    cache.put("s3://b/a", b"xyz")
    assert cache.get("s3://b/a") == b"xyz"
    assert (cache.hits, cache.misses, cache.size_bytes) == (1, 1, 3)


def test_least_recently_used_is_evicted_by_bytes():
    cache = ObjectCache(10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    cache.get("a")  # b is now the least recently used
    cache.put("c", b"1234")
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.size_bytes == 8


def test_replacing_a_key_keeps_the_byte_count_right():
    cache = ObjectCache(10)
    cache.put("a", b"12345678")
    cache.put("a", b"12")
    assert cache.size_bytes == 2 and len(cache) == 1


def test_an_object_larger_than_the_cache_is_not_kept():
    cache = ObjectCache(4)
    cache.put("a", b"12")
    cache.put("big", b"123456")
    assert "big" not in cache and "a" in cache
    assert ObjectCache(0).get("a") is None


def test_negative_size_is_refused():
    with pytest.raises(ValueError):
        ObjectCache(-1)
