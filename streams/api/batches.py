"""``/api/batch``: enhance many photos again under one profile, follow, cancel.

A batch is a list of photos in MySQL (``services.batch_records``). Every worker runs a
small driver that sends the batch's photos on, a few at a time (``batch_window`` in
flight per batch), through the same path as ``POST /api/images/{id}/enhance``; so a
cancel stops every photo not sent yet (nothing is assessed or paid for them), and a
restarted worker picks the batch up where it was.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import datetime

import faust
from aiohttp import web

from imaging.errors import ImgstreamError, RetryableError
from services import batch_records
from streams.api import documents
from streams.api.documents import BadRequest
from streams.api.images import denied, links_for, profile_named, read_json_body, unavailable
from streams.app import Worker
from streams.auth import ADMIN
from streams.http_status import api_error
from streams.ingest import RetryRefused
from streams.records import job_id_for
from streams.redrive import request_enhancement

log = logging.getLogger(__name__)

BATCH_ID = documents.IMAGE_ID
DRIVE_INTERVAL_SECONDS = 1.0


def item_document(row: dict, links: documents.Links) -> dict:
    state = documents.batch_item_state(row)
    published = state in ("completed", "skipped")
    params = documents.json_column(row.get("enhancement_params"), {})
    return {
        "image_id": row["image_id"], "job_id": row["job_id"], "state": state,
        "before": ({"tier": row["before_tier"], "score": documents.number(row["before_score"])}
                   if row.get("before_tier") else None),
        "after": ({"tier": row["after_tier"], "score": documents.number(row["after_score"])}
                  if published and row.get("after_tier") else None),
        "cost_usd": documents.number(row.get("total_cost_usd")) if published else None,
        "kept_original": params.get("kept_original") if published else None,
        "large_url": links.rendition(row["image_id"], "large.jpg") if published else None,
    }


async def batch_status(worker: Worker, batch_id: str) -> dict | None:
    db = worker.resources.db
    batch = await batch_records.batch(db, batch_id)
    if batch is None:
        return None
    counts = Counter(documents.batch_item_state(row)
                     for row in await batch_records.items(db, batch_id))
    spent = await batch_records.spend(db, batch_id)
    return documents.batch_status_document(batch, counts, spent, datetime.utcnow())


async def selected_images(worker: Worker, body: dict) -> list[str]:
    """The photos a batch request names: a list of ids, or a filter."""
    db = worker.resources.db
    if ("image_ids" in body) == ("filter" in body):
        raise BadRequest("give either image_ids (a list) or filter (an object)")
    if "image_ids" in body:
        ids = body["image_ids"]
        if (not isinstance(ids, list) or not ids
                or not all(isinstance(i, str) and documents.IMAGE_ID.match(i) for i in ids)):
            raise BadRequest("image_ids must be a non-empty list of image ids")
        ids = list(dict.fromkeys(ids))
        if len(ids) > batch_records.MAX_BATCH:
            raise BadRequest(f"a batch holds at most {batch_records.MAX_BATCH} photos")
        unknown = sorted(set(ids) - await batch_records.known_images(db, ids))
        if unknown:
            raise BadRequest(f"unknown image ids: {unknown[:20]}")
        return ids
    selection = body["filter"]
    if not isinstance(selection, dict) or not selection:
        raise BadRequest("filter must be an object with seller_id, sku_id, since or until")
    unknown_keys = sorted(set(selection) - {"seller_id", "sku_id", "since", "until"})
    if unknown_keys:
        raise BadRequest(f"unknown filter fields {unknown_keys}")
    for key in ("seller_id", "sku_id"):
        if key in selection and not isinstance(selection[key], str):
            raise BadRequest(f"filter.{key} must be a string")
    ids = await batch_records.select_images(
        db, selection.get("seller_id"), selection.get("sku_id"),
        documents.parse_since(selection.get("since")),
        documents.parse_since(selection.get("until")))
    if len(ids) > batch_records.MAX_BATCH:
        raise BadRequest(f"the filter selects more than {batch_records.MAX_BATCH} photos")
    if not ids:
        raise BadRequest("the filter selects no photo")
    return ids


async def drive_batches(worker: Worker) -> None:
    """One pass: send the next photos of every running batch, finish the done ones."""
    db, window = worker.resources.db, worker.settings.batch_window
    for batch in await batch_records.running_batches(db):
        batch_id = batch["batch_id"]
        rows = await batch_records.items(db, batch_id)
        states = Counter(documents.batch_item_state(row) for row in rows)
        if not states["queued"] and not states["in_flight"]:
            await batch_records.finish(db, batch_id, "completed")
            continue
        free = window - states["in_flight"]
        if free <= 0:
            continue
        profile = profile_named(worker, batch["profile_name"])
        for row in await batch_records.queued(db, batch_id, free):
            image_id = row["image_id"]
            try:
                outcome = await request_enhancement(worker, image_id, profile,
                                                    batch_id=batch_id)
            except RetryRefused as exc:
                if exc.status == 404:  # deleted since: nothing to do for it
                    await batch_records.mark_cancelled(db, batch_id, image_id)
                continue  # busy: its first pass or another enhancement runs; later
            if outcome.status != "queued":
                await batch_records.mark_sent(db, batch_id, image_id)


def register(worker: Worker) -> None:
    app = worker.app

    @app.timer(DRIVE_INTERVAL_SECONDS)
    async def batch_driver() -> None:
        if not worker.resources.is_ready:
            return
        try:
            await drive_batches(worker)
        except (ImgstreamError, BadRequest) as exc:  # an outage: the next tick tries again
            log.warning("batch driver: %s", exc)

    @app.page("/api/batch/enhance")
    class BatchCreateView(faust.web.View):
        """POST (admin) ``{"image_ids": [...]}`` or ``{"filter": {...}}``, optional
        ``"profile"``: a batch of re-enhancements; answers its id and size."""

        async def post(self, request: web.Request) -> web.Response:
            if (no := denied(request, worker, ADMIN)) is not None:
                return no
            try:
                body = await read_json_body(request)
                unknown = sorted(set(body) - {"image_ids", "filter", "profile"})
                if unknown:
                    raise BadRequest(f"unknown fields {unknown}")
                profile = profile_named(worker, body.get("profile"))
                ids = await selected_images(worker, body)
            except BadRequest as exc:
                return api_error("bad_request", str(exc), 400)
            except RetryableError as exc:
                return unavailable(exc)
            batch_id = uuid.uuid4().hex
            selection = ({"image_ids": len(ids)} if "image_ids" in body
                         else {"filter": body["filter"]})
            try:
                await batch_records.create_batch(
                    worker.resources.db, batch_id, profile.ref, selection,
                    [(i, job_id_for(i, profile.name, profile.version)) for i in ids])
            except RetryableError as exc:
                return unavailable(exc)
            return web.json_response({"batch_id": batch_id, "total": len(ids),
                                      "profile": profile.ref, "state": "running"},
                                     status=202)

    @app.page("/api/batch/{batch_id}/status")
    class BatchStatusView(faust.web.View):
        async def get(self, request: web.Request, batch_id: str) -> web.Response:
            if (no := denied(request, worker, ADMIN) or _bad_batch(batch_id)) is not None:
                return no
            try:
                status = await batch_status(worker, batch_id)
            except RetryableError as exc:
                return unavailable(exc)
            if status is None:
                return api_error("not_found", f"no batch {batch_id}", 404)
            return web.json_response(status)

    @app.page("/api/batch/{batch_id}/results")
    class BatchResultsView(faust.web.View):
        """Per-photo results in the batch's order; ``next_cursor`` pages on."""

        async def get(self, request: web.Request, batch_id: str) -> web.Response:
            if (no := denied(request, worker, ADMIN) or _bad_batch(batch_id)) is not None:
                return no
            cursor = request.query.get("cursor") or "0"
            try:
                limit = documents.parse_limit(request.query.get("limit"))
                if not cursor.isdigit():
                    raise BadRequest("cursor is not one this API gave out")
            except BadRequest as exc:
                return api_error("bad_request", str(exc), 400)
            db = worker.resources.db
            try:
                if await batch_records.batch(db, batch_id) is None:
                    return api_error("not_found", f"no batch {batch_id}", 404)
                rows = await batch_records.items(db, batch_id, int(cursor), limit + 1)
            except RetryableError as exc:
                return unavailable(exc)
            links = links_for(request, worker)
            page = rows[:limit]
            return web.json_response({
                "batch_id": batch_id,
                "items": [item_document(row, links) for row in page],
                "next_cursor": str(page[-1]["id"]) if len(rows) > limit else None})

    @app.page("/api/batch/{batch_id}/cancel")
    class BatchCancelView(faust.web.View):
        """POST: photos not sent yet are cancelled (never assessed or paid for);
        those already on their way finish."""

        async def post(self, request: web.Request, batch_id: str) -> web.Response:
            if (no := denied(request, worker, ADMIN) or _bad_batch(batch_id)) is not None:
                return no
            db = worker.resources.db
            try:
                batch = await batch_records.batch(db, batch_id)
                if batch is None:
                    return api_error("not_found", f"no batch {batch_id}", 404)
                if batch["state"] == "running":
                    await batch_records.mark_cancelled(db, batch_id)
                    await batch_records.finish(db, batch_id, "cancelled")
                status = await batch_status(worker, batch_id)
            except RetryableError as exc:
                return unavailable(exc)
            return web.json_response(status)


def _bad_batch(batch_id: str) -> web.Response | None:
    if BATCH_ID.match(batch_id):
        return None
    return api_error("invalid_batch_id", "a batch id is 32 lowercase hex characters", 400)
