"""Operational views on the worker's web port: health, Prometheus metrics, AI costs and
run-time changes of a budget day's caps."""

from __future__ import annotations

import asyncio
import math
import re
import time

import faust
from aiohttp import ClientTimeout, web

from agents.budget_gate import book_of, costs_summary
from imaging.errors import SchemaViolation
from streams import metrics
from streams.app import Worker
from streams.auth import ADMIN, authorized, supplied_key
from streams.budget import budget_zone, today
from streams.health import StallWatch
from streams.http_status import api_error
from streams.records import BudgetCapChanged, deterministic_id, utc_now

DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def refresh_budget_gauges(worker: Worker) -> None:
    summary = costs_summary(today(budget_zone(worker.settings.budget_timezone)),
                            book_of(worker))
    for kind in ("cap", "reserved", "settled", "remaining"):
        metrics.BUDGET_USD.labels(kind).set(summary[f"{kind}_usd"])


def _unauthorized() -> web.Response:
    return api_error("unauthorized", "an admin key is required (X-API-Key)", 401)


def cap_change_problem(body: dict, day: object, today_: str, worker: Worker) -> str | None:
    """Why a requested cap change cannot be applied (None: it can)."""
    ceiling = worker.settings.budget_max_cap_usd

    def bad_amount(value: object) -> bool:
        return (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not 0 <= value <= ceiling)

    if not isinstance(day, str) or not DAY.match(day):
        return "day must be YYYY-MM-DD"
    if day < today_:
        return f"day {day} is over: caps apply to today ({today_}) or later"
    if bad_amount(body.get("daily_cap_usd")):
        return f"daily_cap_usd must be a number from 0 to {ceiling:g}"
    operations = body.get("operation_caps_usd") or {}
    if not isinstance(operations, dict):
        return "operation_caps_usd must be an object of operation: USD"
    known = {entry.operation for entry in worker.catalog.models.values()}
    for operation, value in operations.items():
        if operation not in known:
            return f"unknown operation {operation!r}; known: {sorted(known)}"
        if bad_amount(value):
            return f"the cap of {operation} must be a number from 0 to {ceiling:g}"
    unknown = sorted(set(body) - {"day", "daily_cap_usd", "operation_caps_usd", "reason"})
    if unknown:
        return f"unknown fields {unknown}"
    return None


async def broker_check(settings) -> str:
    """Does the broker answer a metadata request within 3 s? A TCP connection alone is not
    an answer: a hung or frozen broker (measured: tansu stopped with SIGSTOP) still
    completes the handshake, and was reported ok while nothing moved for 12 s."""
    from streams.recovery import list_topics

    host, port = settings.kafka_host_port
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
    except (OSError, TimeoutError) as exc:
        return f"error: {settings.kafka_bootstrap} unreachable ({type(exc).__name__})"
    writer.close()
    if await list_topics(settings.kafka_bootstrap, timeout=3) is None:
        return f"error: {settings.kafka_bootstrap} does not answer (no metadata within 3 s)"
    return "ok"


def consumer_positions(app) -> dict[str, tuple[int, int]]:
    """Per consumed topic: (sum of committed offsets, lag) over this worker's partitions."""
    positions: dict[str, tuple[int, int]] = {}
    try:
        consumer = app.consumer
        assigned = list(consumer.assignment())
    except Exception:  # not started yet
        return positions
    for tp in assigned:
        if consumer._is_changelog_tp(tp):
            continue
        committed = consumer._committed_offset.get(tp) or 0
        try:
            end = consumer.highwater(tp)
        except Exception:
            end = None
        lag = max(0, end - committed) if end is not None else 0
        total, waiting = positions.get(tp.topic, (0, 0))
        positions[tp.topic] = (total + committed, waiting + lag)
    return positions


def register(worker: Worker) -> None:
    """Attach the operational views to the worker's web server."""
    app, resources, settings = worker.app, worker.resources, worker.settings
    zone = budget_zone(settings.budget_timezone)
    book = book_of(worker)
    stalls = StallWatch(settings.stall_seconds)

    @app.page("/metrics")
    class MetricsView(faust.web.View):
        async def get(self, request: web.Request) -> web.Response:
            refresh_budget_gauges(worker)
            for topic, (_, lag) in consumer_positions(app).items():
                metrics.CONSUMER_LAG.labels(topic).set(lag)
            body, content_type = metrics.render()
            return web.Response(body=body, headers={"Content-Type": content_type})

    @app.page("/api/health")
    class HealthView(faust.web.View):
        """Readiness: 200 when the database, the object store and the broker answer, the
        tables have recovered and no consumed topic has stalled; 503 naming what is not."""

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
            checks["broker"] = await broker_check(settings)
            recovery = app.tables.recovery
            checks["tables"] = "recovering" if recovery.in_recovery else "ok"
            stalled = stalls.stalled(consumer_positions(app), time.monotonic())
            checks["agents"] = f"stalled: {', '.join(stalled)}" if stalled else "ok"
            healthy = all(v == "ok" for v in checks.values())
            return web.json_response(
                {"status": "ok" if healthy else "degraded", "checks": checks},
                status=200 if healthy else 503,
            )

    @app.page("/api/stats/costs")
    class CostsView(faust.web.View):
        """A budget day's cap, reserved and settled spend, by operation and model.

        ``?day=YYYY-MM-DD`` (default: today in the budget time zone). The worker that owns
        the day's partition answers; others forward the request to it, and answer from
        their standby copy (``authoritative: false``) only when the owner cannot be reached.
        """

        async def get(self, request: web.Request) -> web.Response:
            if not authorized(request, settings, ADMIN):
                return _unauthorized()
            day = request.query.get("day") or today(zone)
            if not DAY.match(day):
                return api_error("bad_request", "day must be YYYY-MM-DD", 400)
            owner = self._owner(day)
            here = str(app.conf.canonical_url).rstrip("/")
            if request.query.get("local") != "1" and owner and owner != here:
                try:
                    async with app.http_client.get(
                            f"{owner}/api/stats/costs", params={"day": day, "local": "1"},
                            headers={"X-API-Key": supplied_key(request)},
                            timeout=ClientTimeout(total=5)) as response:
                        if response.status == 200:
                            return web.json_response(await response.json())
                except (TimeoutError, OSError):
                    pass
            summary = costs_summary(day, book)
            summary.update(timezone=settings.budget_timezone, served_by=here,
                           authoritative=owner == here)
            return web.json_response(summary)

        @staticmethod
        def _owner(day: str) -> str | None:
            try:
                return str(app.router.key_store(book.days.name, day.encode())).rstrip("/")
            except (KeyError, AttributeError, TypeError):
                return None

    @app.page("/api/budget/caps")
    class BudgetCapsView(faust.web.View):
        """Set a budget day's caps while workers run: ``PUT`` a JSON body
        ``{"daily_cap_usd": 40, "operation_caps_usd": {"background": 30}, "day": "YYYY-MM-DD",
        "reason": "..."}`` (``day`` defaults to today, ``operation_caps_usd`` to none).

        The change travels as a ``BudgetCapChanged`` event to the day's owner, which records
        it in the budget table (so it survives restarts and moves with the partition); the
        answer (202) comes once the broker has it. ``GET /api/stats/costs`` shows it applied.
        Same API keys as the upload API.
        """

        async def put(self, request: web.Request) -> web.Response:
            if not authorized(request, settings, ADMIN):
                return _unauthorized()
            try:
                body = await request.json()
            except ValueError:
                return api_error("bad_request", "body is not JSON", 400)
            if not isinstance(body, dict):
                return api_error("bad_request", "body must be a JSON object", 400)
            day = body.get("day") or today(zone)
            problem = cap_change_problem(body, day, today(zone), worker)
            if problem:
                return api_error("bad_request", problem, 400)
            stamp = utc_now()
            change = BudgetCapChanged.new(
                event_id=deterministic_id("BudgetCapChanged", str(day), stamp),
                occurred_at=stamp,
                budget_key=str(day),
                budget_day=day,
                daily_cap_usd=body.get("daily_cap_usd"),
                operation_caps_usd=body.get("operation_caps_usd") or {},
                reason=str(body.get("reason") or ""),
                requested_by=request.remote or "",
            )
            try:
                await worker.topics.send("ai_caps", change, validate=True)
            except SchemaViolation as exc:
                return api_error("bad_request", str(exc), 400)
            return web.json_response(change.to_document(), status=202)
