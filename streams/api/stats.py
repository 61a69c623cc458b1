"""``/api/stats/usage``, ``/api/stats/quality``, ``/api/pipeline`` and the health of
each dependency (``/api/health/bedrock``, ``/api/health/storage``)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from urllib.parse import urlsplit

import faust
from aiohttp import web

from imaging.errors import RetryableError
from services import image_queries
from streams.api import documents
from streams.api.documents import BadRequest
from streams.api.images import denied, unavailable
from streams.app import Worker
from streams.auth import ADMIN
from streams.http_status import api_error
from streams.web import consumer_positions

_MAX_DAYS = 366


def bedrock_address(worker: Worker) -> tuple[str, int]:
    endpoint = worker.settings.bedrock_endpoint or (
        f"https://bedrock-runtime.{worker.settings.bedrock_region}.amazonaws.com")
    parts = urlsplit(endpoint)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def reachable(host: str, port: int) -> tuple[str, str, float]:
    """(status, detail, latency ms) of a TCP connection within 3 s."""
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=3)
    except (OSError, TimeoutError) as exc:
        return "error", f"{host}:{port} unreachable ({type(exc).__name__})", \
            (time.perf_counter() - started) * 1000
    writer.close()
    return "ok", f"{host}:{port} accepts connections", (time.perf_counter() - started) * 1000


def health_answer(status: str, detail: str, latency_ms: float, **extra) -> web.Response:
    return web.json_response({"status": status, "detail": detail,
                              "latency_ms": round(latency_ms, 1), **extra},
                             status=200 if status == "ok" else 503)


def register(worker: Worker) -> None:
    app = worker.app

    @app.page("/api/stats/usage")
    class UsageView(faust.web.View):
        """AI calls, cache hits, failures and spend by day, operation and model
        (``?days=N``, default 7), from ai_usage_logs."""

        async def get(self, request: web.Request) -> web.Response:
            if (no := denied(request, worker, ADMIN)) is not None:
                return no
            days = request.query.get("days", "7")
            if not days.isdigit() or not 1 <= int(days) <= _MAX_DAYS:
                return api_error("bad_request", f"days must be 1 to {_MAX_DAYS}", 400)
            since = date.today() - timedelta(days=int(days) - 1)
            try:
                rows = await image_queries.usage_rows(worker.resources.db, since)
            except RetryableError as exc:
                return unavailable(exc)
            return web.json_response({"since": since.isoformat(),
                                      **documents.usage_document(rows)})

    @app.page("/api/stats/quality")
    class QualityStatsView(faust.web.View):
        """Tier distribution and mean scores before/after, issues, by day and seller
        (filters as ``GET /api/images``)."""

        async def get(self, request: web.Request) -> web.Response:
            if (no := denied(request, worker, ADMIN)) is not None:
                return no
            try:
                query = {k: v for k, v in request.query.items()}
                selection = documents.parse_filter(query)
            except BadRequest as exc:
                return api_error("bad_request", str(exc), 400)
            try:
                rows = await image_queries.quality_rows(
                    worker.resources.db, selection,
                    (worker.profile.name, worker.profile.version))
            except RetryableError as exc:
                return unavailable(exc)
            return web.json_response(documents.quality_document(rows))

    @app.page("/api/pipeline")
    class PipelineView(faust.web.View):
        """The agents and their lag on this worker, and the latest dead letters."""

        async def get(self, request: web.Request) -> web.Response:
            if (no := denied(request, worker, ADMIN)) is not None:
                return no
            positions = consumer_positions(app)
            agents = []
            for agent in app.agents.values():
                topics = sorted(getattr(agent.channel, "topics", ()) or ())
                agents.append({"name": agent.name.rsplit(".", 1)[-1], "topics": topics,
                               "lag": sum(positions.get(t, (0, 0))[1] for t in topics)})
            agents.sort(key=lambda a: a["name"])
            try:
                total, recent = await image_queries.recent_dead_letters(
                    worker.resources.db, 20)
            except RetryableError as exc:
                return unavailable(exc)
            return web.json_response({
                "agents": agents,
                "dead_letters": {"total": total, "recent": [
                    {"stage": r["stage"], "error_class": r["error_class"],
                     "error_message": r["error_message"][:500], "image_id": r["image_id"],
                     "source_topic": r["source_topic"],
                     "failed_at": documents.iso(r["failed_at"])} for r in recent]}})

    @app.page("/api/health/bedrock")
    class BedrockHealthView(faust.web.View):
        """Can this worker reach Bedrock? (a TCP connection: no call, nothing billed)"""

        async def get(self, request: web.Request) -> web.Response:
            status, detail, latency = await reachable(*bedrock_address(worker))
            models = {m.id: m.lifecycle for m in worker.catalog.models.values()}
            return health_answer(status, detail, latency, models=models)

    @app.page("/api/health/storage")
    class StorageHealthView(faust.web.View):
        """Does the object store answer, and are the three buckets there?"""

        async def get(self, request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                await asyncio.wait_for(worker.resources.ready(), timeout=5)
                await asyncio.wait_for(worker.resources.store.ping(), timeout=5)
            except Exception as exc:  # any failure is the answer, not a 500
                return health_answer("error", f"object store: {exc}",
                                     (time.perf_counter() - started) * 1000)
            buckets = [worker.settings.originals_bucket, worker.settings.enhanced_bucket,
                       worker.settings.ai_cache_bucket]
            return health_answer("ok", "object store answers",
                                 (time.perf_counter() - started) * 1000, buckets=buckets)
