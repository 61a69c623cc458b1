"""Operational views on the worker's web port: health and Prometheus metrics."""

from __future__ import annotations

import asyncio

import faust
from aiohttp import web

from streams import metrics
from streams.app import app, resources


@app.page("/metrics")
class MetricsView(faust.web.View):
    async def get(self, request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})


@app.page("/api/health")
class HealthView(faust.web.View):
    """200 when the database, the object store and the broker answer; 503 otherwise."""

    async def get(self, request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(resources.ready(), timeout=5)
            await asyncio.wait_for(resources.db.fetchone("SELECT 1 AS ok"), timeout=5)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc}"
        try:
            await asyncio.wait_for(resources.store.ping(), timeout=5)
            checks["object_store"] = "ok"
        except Exception as exc:
            checks["object_store"] = f"error: {exc}"
        producer = app.producer
        checks["broker"] = "ok" if producer is not None and producer.started else "not started"
        healthy = all(v == "ok" for v in checks.values())
        return web.json_response(
            {"status": "ok" if healthy else "degraded", "checks": checks},
            status=200 if healthy else 503,
        )
