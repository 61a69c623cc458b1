"""``GET /api/openapi.json``: the API's OpenAPI document (``schemas/openapi.json``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import faust
from aiohttp import web

from streams.app import Worker


@cache
def openapi_document() -> dict[str, Any]:
    return json.loads((resources.files("schemas") / "openapi.json").read_text("utf-8"))


def register(worker: Worker) -> None:
    @worker.app.page("/api/openapi.json")
    class OpenApiView(faust.web.View):
        async def get(self, request: web.Request) -> web.Response:
            return web.json_response(openapi_document())
