"""ingest: accept a seller's photo, store it by content hash, record it, emit ImageUploaded.

``POST /api/images/upload`` (multipart: file, seller_id, sku_id, product_group_id) is
served on the worker's web port; ``imgstream upload`` is a concurrent client of it.
Order of effects: validate (in an executor) -> store the original (content-addressed:
the same bytes never make a second object) -> upsert the product_images row -> emit the
event and wait for the broker's acknowledgement -> answer. Every step is idempotent, so
a client that retries after an error or a timeout cannot create duplicates. A rejected
upload stores, records and emits nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust
from aiohttp import BodyPartReader, ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from imaging.errors import PermanentError, RejectedUpload, RetryableError
from imaging.validation import UploadLimits, ValidatedImage, check_filename, validate_image
from services.object_store import ObjectUri
from streams.app import Worker
from streams.auth import ADMIN, UPLOADER, RateLimiter, authorized, client_of, retry_after_header
from streams.broker_loss import UNFINISHED
from streams.http_status import rejection_status
from streams.identity import (
    MAX_CATALOGUE_ID_LENGTH,
    CatalogueId,
    InvalidCatalogueId,
    parse_catalogue_id,
)
from streams.metrics import STRANDED_REDRIVEN, UPLOAD_SECONDS, UPLOADS
from streams.records import ImageUploaded, deterministic_id, image_id_for
from streams.settings import Settings
from streams.trust import original_uri

log = logging.getLogger(__name__)

_FIELD_LIMIT = 1024
_MULTIPART_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class UploadRequest:
    data: bytes
    filename: str | None
    declared_type: str | None
    seller_id: str | None
    sku_id: str | None
    product_group_id: str | None


@dataclass(frozen=True)
class IngestResult:
    event: ImageUploaded
    duplicate: bool
    status: str
    notes: tuple[str, ...] = ()

    def to_response(self) -> dict[str, Any]:
        e = self.event
        return {
            "image_id": e.image_id,
            "status": self.status,
            # Keys as events and rows carry them; labels only when they differ.
            "seller_id": e.seller_id,
            "sku_id": e.sku_id,
            "product_group_id": e.product_group_id,
            "seller_label": e.seller_label,
            "sku_label": e.sku_label,
            "product_group_label": e.product_group_label,
            "duplicate": self.duplicate,
            "original_uri": e.original_uri,
            "content_sha256": e.content_sha256,
            "format": e.format,
            "width": e.width,
            "height": e.height,
            "size_bytes": e.size_bytes,
            "notes": list(self.notes),
        }


#: Listing id fields of an upload; seller_id and sku_id are required.
IDENTITY_FIELDS = ("seller_id", "sku_id", "product_group_id")


def check_identity(
    seller_id: str | None, sku_id: str | None, product_group_id: str | None
) -> tuple[CatalogueId, CatalogueId, CatalogueId | None]:
    """Validate the listing identifiers as the catalogue has them (streams/identity.py:
    1-128 characters after NFC, no control characters) and derive their event keys;
    pure, raises RejectedUpload."""
    for field, value in (("seller_id", seller_id), ("sku_id", sku_id)):
        if value is None or value.strip() == "":
            raise RejectedUpload("missing_field", f"The field {field} is required.")
    checked: list[CatalogueId | None] = []
    for field, value in zip(IDENTITY_FIELDS, (seller_id, sku_id, product_group_id),
                            strict=True):
        if value is None or value.strip() == "":
            checked.append(None)
            continue
        try:
            checked.append(parse_catalogue_id(value))
        except InvalidCatalogueId as exc:
            raise RejectedUpload(
                "invalid_field",
                f"The field {field} is refused: {exc}. Ids are 1-{MAX_CATALOGUE_ID_LENGTH} "
                "characters (after NFC) without control or invisible characters.") from None
    return checked[0], checked[1], checked[2]  # type: ignore[return-value]


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_side=settings.max_side,
        min_side=settings.min_side,
    )


def uploaded_event(image: ValidatedImage, uri: ObjectUri, seller: CatalogueId,
                   sku: CatalogueId, group: CatalogueId | None,
                   filename: str | None) -> ImageUploaded:
    # The image id is made of the keys, so ids that were plain before keep their image ids.
    image_id = image_id_for(seller.key, sku.key, image.sha256)
    return ImageUploaded.new(
        event_id=deterministic_id("ImageUploaded", image_id),
        image_id=image_id,
        seller_id=seller.key,
        sku_id=sku.key,
        product_group_id=group.key if group else None,
        seller_label=seller.carried_label,
        sku_label=sku.carried_label,
        product_group_label=group.carried_label if group else None,
        filename=filename,
        original_uri=str(uri),
        content_sha256=image.sha256,
        content_type=image.content_type,
        format=image.format,
        size_bytes=image.size_bytes,
        width=image.width,
        height=image.height,
        orientation=image.orientation,
    )


class RetryRefused(Exception):
    """A retry that cannot be done: ``status`` is the HTTP status (404 or 409)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def stored_upload(image_id: str, worker: Worker) -> tuple[ImageUploaded, str]:
    """The photo's ``ImageUploaded`` rebuilt from its stored original (validated again,
    as an upload would be) and its current status. RetryRefused 404 when unknown."""
    row = await worker.resources.db.fetchone(
        "SELECT image_id, seller_id, sku_id, product_group_id, seller_label, sku_label,"
        " product_group_label, filename, original_url, status FROM product_images"
        " WHERE image_id = %s", (image_id,))
    if row is None:
        raise RetryRefused(404, f"no photo {image_id}")
    uri = original_uri(row["original_url"], worker.settings)
    data = await worker.resources.store.get(uri)
    loop = asyncio.get_running_loop()
    image = await loop.run_in_executor(
        None, partial(validate_image, data, upload_limits(worker.settings)))
    event = uploaded_event(image, uri, _stored_id(row, "seller"), _stored_id(row, "sku"),
                           _stored_id(row, "product_group"), row["filename"])
    if event.image_id != image_id:
        raise RetryRefused(409, f"photo {image_id}: its original does not match its row")
    return event, row["status"]


async def retry_failed(image_id: str, worker: Worker) -> ImageUploaded:
    """Drive a ``failed`` photo through the pipeline again, from its stored original.
    Several retries at once make one event."""
    row = await worker.resources.db.fetchone(
        "SELECT status FROM product_images WHERE image_id = %s", (image_id,))
    if row is None:
        raise RetryRefused(404, f"no photo {image_id}")
    if row["status"] != "failed":
        raise RetryRefused(409, f"photo {image_id} is {row['status']}, not failed")
    event, _ = await stored_upload(image_id, worker)
    if not await _claim_redrive(event, worker):
        raise RetryRefused(409, f"photo {image_id} is being retried already")
    await worker.send("uploaded", event)
    return event


async def redrive_stranded(worker: Worker, older_than: float, limit: int = 10_000
                           ) -> list[str]:
    """Drive again every unfinished photo whose status has not changed for ``older_than``
    seconds (its events were lost: a broker that came back empty, a lost send), from its
    stored original, oldest first. Ids are deterministic, so a photo that was only slow is
    processed again harmlessly; the conditional claim lets one of several workers sweeping
    at once re-drive each photo. Returns the ids driven again."""
    marks = ", ".join(["%s"] * len(UNFINISHED))
    rows = await worker.resources.db.fetchall(
        f"SELECT image_id FROM product_images WHERE status IN ({marks}) AND updated_at <"
        f" CURRENT_TIMESTAMP(3) - INTERVAL %s MICROSECOND ORDER BY updated_at LIMIT %s",
        (*UNFINISHED, int(older_than * 1e6), limit))
    redriven = []
    for found in rows:
        try:
            event, _ = await stored_upload(found["image_id"], worker)
        except (RetryRefused, RejectedUpload, PermanentError) as exc:
            log.error("stranded photo %s cannot be driven again: %s", found["image_id"], exc)
            continue
        affected = await worker.resources.db.execute(
            f"UPDATE product_images SET status = 'uploaded', updated_at = CURRENT_TIMESTAMP(3)"
            f" WHERE image_id = %s AND status IN ({marks}) AND updated_at <"
            f" CURRENT_TIMESTAMP(3) - INTERVAL %s MICROSECOND",
            (event.image_id, *UNFINISHED, int(older_than * 1e6)))
        if affected:
            await worker.send("uploaded", event)
            STRANDED_REDRIVEN.inc()
            redriven.append(event.image_id)
    return redriven


def _stored_id(row: dict[str, Any], name: str) -> CatalogueId | None:
    """A listing id as product_images stores it: the key, and the label when it differs."""
    key = row[f"{name}_id"]
    if key is None:
        return None
    return CatalogueId(label=row[f"{name}_label"] or key, key=key)


async def ingest(request: UploadRequest, worker: Worker) -> IngestResult:
    """Validate, store, record and emit one upload (idempotent)."""
    seller, sku, group = check_identity(
        request.seller_id, request.sku_id, request.product_group_id
    )
    filename = check_filename(request.filename)
    loop = asyncio.get_running_loop()
    image: ValidatedImage = await loop.run_in_executor(
        None, partial(validate_image, request.data, upload_limits(worker.settings),
                      request.declared_type)
    )
    await worker.resources.ready()
    uri = ObjectUri(worker.settings.originals_bucket, image.storage_key)
    await worker.resources.store.put_if_absent(uri, request.data, image.content_type)

    event = uploaded_event(image, uri, seller, sku, group, filename)
    inserted, status = await _record(event, worker)
    if inserted or await _claim_redrive(event, worker):
        await worker.send("uploaded", event)
        status = "uploaded"
    for note in image.notes:
        log.info("upload %s accepted by its content: %s", event.image_id, note)
        UPLOADS.labels("noted", note.split(":", 1)[0]).inc()
    return IngestResult(event=event, duplicate=not inserted, status=status, notes=image.notes)


#: A photo still ``uploaded`` this long after its last event may have lost that event (a
#: crash between the insert and the send): a re-upload sends it again.
REDRIVE_AFTER_SECONDS = 30


async def _claim_redrive(event: ImageUploaded, worker: Worker) -> bool:
    """Should a re-upload of a known photo drive it through the pipeline again?

    Yes when it failed (the seller's retry) or when it seems stuck before assessment;
    the conditional update lets exactly one of many identical concurrent uploads win,
    so they make one ``ImageUploaded``, not one each.
    """
    affected = await worker.resources.db.execute(
        "UPDATE product_images SET status = 'uploaded', last_error = NULL,"
        " updated_at = CURRENT_TIMESTAMP(3) WHERE image_id = %s AND (status = 'failed'"
        " OR (status = 'uploaded' AND updated_at < CURRENT_TIMESTAMP(3) - INTERVAL %s SECOND))",
        (event.image_id, REDRIVE_AFTER_SECONDS))
    return bool(affected)


async def _record(event: ImageUploaded, worker: Worker) -> tuple[bool, str]:
    """Insert the product_images row unless it exists; returns (inserted, status)."""
    db = worker.resources.db
    affected = await db.execute(
        "INSERT IGNORE INTO product_images (image_id, seller_id, product_group_id, sku_id,"
        " seller_label, product_group_label, sku_label, filename, original_url,"
        " content_sha256, format, width, height, file_size_bytes, status)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'uploaded')",
        (
            event.image_id, event.seller_id, event.product_group_id, event.sku_id,
            event.seller_label, event.product_group_label, event.sku_label,
            event.filename, event.original_uri, event.content_sha256, event.format,
            event.width, event.height, event.size_bytes,
        ),
    )
    if affected:
        # Uploaded again after its seller deleted it: a new life, no longer ignored.
        await db.execute("DELETE FROM deleted_images WHERE image_id = %s", (event.image_id,))
        return True, "uploaded"
    row = await db.fetchone(
        "SELECT status FROM product_images WHERE image_id = %s", (event.image_id,)
    )
    return False, row["status"] if row else "uploaded"


# --- HTTP ---------------------------------------------------------------------------


def _error(code: str, reason: str, status: int) -> web.Response:
    return web.json_response({"error": code, "message": reason, "reason": reason},
                             status=status)


async def read_upload(request: web.Request, max_bytes: int) -> UploadRequest:
    """The upload in ``request``; a body that is not well-formed multipart is a 400, a
    client that goes away mid-body stores nothing (the body is read before any write)."""
    try:
        return await _read_multipart(request, max_bytes)
    except RejectedUpload:
        raise
    except (ConnectionError, asyncio.CancelledError):
        UPLOADS.labels("aborted", "client_gone").inc()
        raise
    except (ValueError, AssertionError, LookupError, UnicodeError, asyncio.IncompleteReadError,
            web.HTTPException, ClientPayloadError, HttpProcessingError) as exc:
        raise RejectedUpload("malformed_multipart",
                             f"The request body is not valid multipart/form-data: "
                             f"{type(exc).__name__}: {exc}"[:300]) from None


async def _read_multipart(request: web.Request, max_bytes: int) -> UploadRequest:
    """Stream the multipart body, refusing oversized files without buffering them."""
    if request.content_length and request.content_length > max_bytes + _MULTIPART_OVERHEAD:
        raise RejectedUpload(
            "file_too_large",
            f"The upload is {request.content_length / 1048576:.1f} MB; "
            f"the limit is {max_bytes / 1048576:.1f} MB.",
        )
    if not request.content_type.startswith("multipart/form-data"):
        raise RejectedUpload(
            "not_multipart", "Send the photo as multipart/form-data with a 'file' field.")
    reader = await request.multipart()
    fields: dict[str, str] = {}
    data: bytes | None = None
    filename: str | None = None
    declared: str | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            if data is not None:
                raise RejectedUpload("multiple_files", "Send one photo per request.")
            filename = part.filename
            declared = part.headers.get("Content-Type")
            chunks: list[bytes] = []
            total = 0
            while chunk := await part.read_chunk(256 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise RejectedUpload(
                        "file_too_large",
                        f"The file is larger than the limit of {max_bytes / 1048576:.1f} MB.",
                    )
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name:
            value = await part.read(decode=True)
            if len(value) > _FIELD_LIMIT:
                raise RejectedUpload("invalid_field", f"The field {part.name} is too long.")
            charset = part.get_charset(default="utf-8")
            try:
                fields[part.name] = value.decode(charset)
            except UnicodeDecodeError:
                # Replacing the bad bytes would quietly make another seller or SKU.
                raise RejectedUpload("invalid_field", f"The field {part.name} is not "
                                     f"{charset} text (send UTF-8).") from None
    if data is None:
        raise RejectedUpload("missing_file", "The request has no 'file' field.")
    return UploadRequest(
        data=data,
        filename=filename,
        declared_type=declared,
        seller_id=fields.get("seller_id"),
        sku_id=fields.get("sku_id"),
        product_group_id=fields.get("product_group_id"),
    )


def register(worker: Worker) -> None:
    """Attach the upload and retry views to the worker's web server."""

    @worker.app.page("/api/images/{image_id}/retry")
    class RetryView(faust.web.View):
        """POST (admin): drive a failed photo through the pipeline again."""

        async def post(self, request: web.Request, image_id: str) -> web.Response:
            if not authorized(request, worker.settings, ADMIN):
                return _error("unauthorized", "An admin key is required (X-API-Key).", 401)
            if not re.fullmatch(r"[0-9a-f]{32}", image_id):
                return _error("invalid_image_id", "An image id is 32 hex characters.", 400)
            try:
                event = await retry_failed(image_id, worker)
            except RetryRefused as exc:
                return _error("not_found" if exc.status == 404 else "conflict", exc.reason,
                              exc.status)
            except RejectedUpload as exc:
                return _error(exc.code, f"The stored original is refused: {exc.reason}", 409)
            except RetryableError as exc:
                return _error("unavailable", f"Temporarily unavailable, retry: {exc}", 503)
            except PermanentError as exc:
                return _error("conflict", str(exc), 409)
            return web.json_response({"image_id": event.image_id, "status": "uploaded"},
                                     status=202)

    @worker.app.page("/api/images/retry-stranded")
    class RetryStrandedView(faust.web.View):
        """POST (admin) ``?older_than=SECONDS`` (default 600): drive again every unfinished
        photo whose status has not changed for that long (its events were lost)."""

        async def post(self, request: web.Request) -> web.Response:
            if not authorized(request, worker.settings, ADMIN):
                return _error("unauthorized", "An admin key is required (X-API-Key).", 401)
            try:
                older_than = float(request.query.get("older_than", "600"))
            except ValueError:
                older_than = -1.0
            if not 0 <= older_than <= 30 * 86400:
                return _error("invalid_field", "older_than is seconds, 0 to 2592000.", 400)
            try:
                ids = await redrive_stranded(worker, older_than)
            except RetryableError as exc:
                return _error("unavailable", f"Temporarily unavailable, retry: {exc}", 503)
            return web.json_response({"redriven": ids, "count": len(ids)}, status=202)

    limiter = RateLimiter(worker.settings.upload_rate_per_second, worker.settings.upload_burst)

    @worker.app.page("/api/images/upload")
    class UploadView(faust.web.View):
        """POST a photo; 201 when new, 200 when the same listing photo was uploaded before."""

        async def post(self, request: web.Request) -> web.Response:
            started = time.perf_counter()
            wait = limiter.retry_after(client_of(request))
            if wait:
                UPLOADS.labels("rejected", "rate_limited").inc()
                message = f"Too many uploads; retry in {max(wait, 0.01):.2f} s."
                return web.json_response(
                    {"error": "rate_limited", "message": message, "reason": message},
                    status=429, headers=retry_after_header(wait))
            if not authorized(request, worker.settings, UPLOADER):
                UPLOADS.labels("rejected", "unauthorized").inc()
                return _error("unauthorized", "A valid API key is required (X-API-Key).", 401)
            try:
                upload = await read_upload(request, worker.settings.max_upload_bytes)
                result = await ingest(upload, worker)
            except RejectedUpload as exc:
                UPLOADS.labels("rejected", exc.code).inc()
                return _error(exc.code, exc.reason, rejection_status(exc.code))
            except RetryableError as exc:
                UPLOADS.labels("error", "unavailable").inc()
                return _error("unavailable", f"Temporarily unavailable, retry: {exc}", 503)
            except PermanentError as exc:
                UPLOADS.labels("error", "internal").inc()
                return _error("internal", str(exc), 500)
            UPLOADS.labels("duplicate" if result.duplicate else "created", "ok").inc()
            UPLOAD_SECONDS.observe(time.perf_counter() - started)
            return web.json_response(result.to_response(), status=200 if result.duplicate else 201)
