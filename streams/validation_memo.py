"""Remember which exact message values already passed schema validation in this process.

Every event is validated twice per hop: by its producer before sending and by each
consumer after reading (``streams.processing``). When the producer and the consumer are
the same worker - the usual case, since every topic is keyed by image id - the consumer
would re-check the very bytes the producer just checked, a millisecond of pure CPU per
large event. Validation is a pure function of (schema, bytes), so a value whose digest
is remembered here is valid; anything else - in particular whatever another process or
a hostile producer wrote - is validated as before, and a violation is never remembered.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class ValidationMemo:
    """A bounded LRU set of (schema name, value digest) that passed validation."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, bytes], None] = OrderedDict()

    @staticmethod
    def _key(schema_name: str, raw: bytes) -> tuple[str, bytes]:
        return schema_name, hashlib.blake2b(raw, digest_size=20).digest()

    def remember(self, schema_name: str, raw: bytes) -> None:
        """Record that ``raw`` is a valid ``schema_name`` value (call after validating)."""
        if self.capacity == 0:
            return
        key = self._key(schema_name, raw)
        self._entries[key] = None
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def known_valid(self, schema_name: str, raw: bytes) -> bool:
        """True when exactly these bytes passed validation against this schema before."""
        key = self._key(schema_name, raw)
        if key not in self._entries:
            return False
        self._entries.move_to_end(key)
        return True

    def __len__(self) -> int:
        return len(self._entries)
