"""A small synchronous client of the worker's JSON API, for the CLI (``imgstream show``,
``images``, ``batch``, ``upload --wait``)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from imaging.errors import ImgstreamError


class ApiError(ImgstreamError):
    """The API answered with an error document ({"error", "message"})."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class ApiUnreachable(ImgstreamError):
    """No worker answered at the API's address."""


def default_api(settings) -> str:
    return f"http://{settings.web_host}:{settings.web_port}"


def default_key(settings, given: str | None) -> str | None:
    """--api-key, else IMGSTREAM_API_KEY, else this machine's first admin key, else its
    first uploader key (with no keys configured the API is open and none is needed)."""
    if given:
        return given
    if os.environ.get("IMGSTREAM_API_KEY"):
        return os.environ["IMGSTREAM_API_KEY"]
    for keys in (settings.admin_key_set, settings.api_key_set):
        if keys:
            return sorted(keys)[0]
    return None


@dataclass
class ApiClient:
    base_url: str
    api_key: str | None = None
    timeout: float = 30.0

    def get(self, path: str, **params: Any) -> Any:
        query = {k: str(v) for k, v in params.items() if v not in (None, "")}
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        return self._call("GET", path)

    def post(self, path: str, body: dict | None = None) -> Any:
        return self._call("POST", path, body if body is not None else {})

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self.base_url.rstrip("/") + path
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                document = json.loads(exc.read() or b"{}")
            except ValueError:
                document = {}
            if not isinstance(document, dict):
                document = {}
            raise ApiError(exc.code, str(document.get("error") or exc.reason),
                           str(document.get("message") or document.get("reason") or "")
                           ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiUnreachable(
                f"no worker answers at {self.base_url} ({reason}); start one with "
                "`imgstream demo` or `imgstream worker`, or pass --api URL") from None
