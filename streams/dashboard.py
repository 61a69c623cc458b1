"""``GET /dashboard``: an operator's page on the worker's web port.

One server-rendered HTML page plus its script and style sheet, shipped as package data
(``streams/static/``). The page reads the same JSON API as the CLI (``/api/images``,
``/api/stats/*``, ``/api/pipeline``, ``/api/health``) with the browser's fetch(); the
page itself holds no data, so it is served without a key and the API decides what a
caller may see (a 401 makes the page ask for a key).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import faust
from aiohttp import web

from streams.app import Worker

ASSETS = {
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
}
# The page may load scripts, styles and fetch only from this worker; images also come
# from wherever the API's signed URLs point (the object store or a CDN in production).
POLICY = ("default-src 'self'; img-src 'self' data: http: https:; "
          "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")


@cache
def asset(name: str) -> bytes:
    """A file of ``streams/static`` (read once: it is part of the installed package)."""
    return resources.files("streams").joinpath("static", name).read_bytes()


def _headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-cache",
            "Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff"}


def register(worker: Worker) -> None:
    """Attach ``/dashboard`` and its two assets to the worker's web server."""
    app = worker.app

    @app.page("/dashboard")
    class DashboardView(faust.web.View):
        async def get(self, request: web.Request) -> web.Response:
            return web.Response(body=asset("dashboard.html"), headers=_headers("text/html"))

    @app.page("/dashboard/{name}")
    class DashboardAssetView(faust.web.View):
        async def get(self, request: web.Request, name: str) -> web.Response:
            if name not in ASSETS:
                return web.json_response({"error": "not_found",
                                          "message": f"no dashboard asset {name!r}"},
                                         status=404)
            return web.Response(body=asset(name), headers=_headers(ASSETS[name]))
