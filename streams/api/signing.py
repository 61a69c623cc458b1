"""Signed image URLs: a browser's ``<img>`` cannot send an API key, so the API hands
out links that carry their own short-lived permission (like S3's presigned URLs)."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

URL_LIFETIME_SECONDS = 3600


def signature(secret: str, path: str, expires: int) -> str:
    message = f"{path}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def signed_path(secret: str, path: str, now: float | None = None,
                lifetime: int = URL_LIFETIME_SECONDS) -> str:
    """``path`` with ``?expires=&sig=``; the expiry is rounded up to the next ten
    minutes so repeated answers give the same (cacheable) URL."""
    now = time.time() if now is None else now
    expires = (int(now + lifetime) // 600 + 1) * 600
    return f"{path}?{urlencode({'expires': expires, 'sig': signature(secret, path, expires)})}"


def valid_signature(secret: str, path: str, expires: str | None, sig: str | None,
                    now: float | None = None) -> bool:
    if not expires or not sig or not expires.isdigit():
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature(secret, path, int(expires)), sig)
