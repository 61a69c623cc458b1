"""A small in-process LRU of immutable objects, bounded by bytes.

A photo passes through one worker several times: the upload stores the original, assess
reads it, enhance_local reads it again and writes the intermediate that finalize reads
back. Those objects never change once written (content-addressed keys, or keys derived
from the job whose bytes are deterministic), so a worker that just wrote or read one can
serve it from memory instead of downloading it again. Only callers that know an object
is immutable put it here; mutable keys (the ``current-*`` aliases) never are.
"""

from __future__ import annotations

from collections import OrderedDict


class ObjectCache:
    """URI -> bytes, least recently used evicted first once ``max_bytes`` is exceeded."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        data = self._items.get(key)
        if data is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return data

    def put(self, key: str, data: bytes) -> None:
        """Keep ``data``; an object larger than the whole cache is not kept at all."""
        old = self._items.pop(key, None)
        if old is not None:
            self.size_bytes -= len(old)
        if len(data) > self.max_bytes:
            return
        self._items[key] = data
        self.size_bytes += len(data)
        while self.size_bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.size_bytes -= len(evicted)

    def forget(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size_bytes -= len(old)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
