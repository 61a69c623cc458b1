"""API keys of the worker's HTTP API (uploads, budget caps)."""

from __future__ import annotations

import hmac

from aiohttp import web

from streams.settings import get_settings


def authorized(request: web.Request) -> bool:
    """The request carries one of the API keys (or none are configured)."""
    keys = get_settings().api_key_set
    if not keys:
        return True
    supplied = request.headers.get("X-API-Key", "")
    auth = request.headers.get("Authorization", "")
    if not supplied and auth.lower().startswith("bearer "):
        supplied = auth[7:].strip()
    return any(hmac.compare_digest(supplied.encode(), key.encode()) for key in keys)
