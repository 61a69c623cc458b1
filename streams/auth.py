"""Who may call what on the worker's HTTP API: uploader and admin keys, upload rates."""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass, field

from aiohttp import web

from streams.settings import Settings

UPLOADER = "uploader"
ADMIN = "admin"


def supplied_key(request: web.Request) -> str:
    key = request.headers.get("X-API-Key", "")
    auth = request.headers.get("Authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


def authorized(request: web.Request, settings: Settings, role: str = UPLOADER) -> bool:
    """The request carries a key of ``role`` (admin keys may do what uploaders may).

    With no key configured at all (the embedded stack by default) everything is open.
    """
    uploaders, admins = settings.api_key_set, settings.admin_key_set
    if not uploaders and not admins:
        return True
    allowed = admins if role == ADMIN else uploaders | admins
    key = supplied_key(request).encode()
    return any(hmac.compare_digest(key, k.encode()) for k in allowed)


@dataclass
class RateLimiter:
    """A token bucket per client: ``rate`` per second sustained, ``burst`` at once."""

    rate: float
    burst: int
    clock: object = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def retry_after(self, client: str) -> float:
        """0 when ``client`` may go on now (and counts it), else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget clients that went quiet
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return 0.0
        self._buckets[client] = (tokens, now)
        return max(0.001, (1.0 - tokens) / self.rate)


def admin_headers(settings: Settings) -> dict[str, str]:
    """Headers for this machine's own calls to admin endpoints (CLI, demo)."""
    keys = sorted(settings.admin_key_set)
    return {"X-API-Key": keys[0]} if keys else {}


def client_of(request: web.Request) -> str:
    """Rate limits are per API key, or per address for requests without one."""
    key = supplied_key(request)
    return f"key:{key}" if key else f"addr:{request.remote or '?'}"


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
