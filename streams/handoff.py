"""Enhanced pixels handed from enhance_local to finalize inside one worker process.

Both stages of a photo run where its partition is assigned, so the enhanced image
usually never needs to leave the process: enhance_local leaves the array here and
finalize takes it, with no intermediate JPEG encoded, stored, fetched or decoded. When
finalize runs elsewhere (a rebalance or a restart in between), it finds nothing here and
enhances again from the original and the recorded plan: local steps are deterministic,
so the published result is the same (docs/decisions/0008-local-handoff-in-memory.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class PixelHandoff:
    """job id -> enhanced BGR array; the oldest entries go first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def leave(self, job_id: str, pixels: np.ndarray) -> None:
        with self._lock:
            old = self._items.pop(job_id, None)
            if old is not None:
                self.size_bytes -= old.nbytes
            if pixels.nbytes > self.max_bytes:
                return
            self._items[job_id] = pixels
            self.size_bytes += pixels.nbytes
            while self.size_bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self.size_bytes -= evicted.nbytes

    def take(self, job_id: str) -> np.ndarray | None:
        """The job's pixels (removed from here), or None when this process has none."""
        with self._lock:
            pixels = self._items.pop(job_id, None)
            if pixels is None:
                self.misses += 1
                return None
            self.size_bytes -= pixels.nbytes
            self.hits += 1
            return pixels

    def __len__(self) -> int:
        return len(self._items)
