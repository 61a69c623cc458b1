"""``/api/images``: one photo's results, the list of photos, re-enhancing and deleting
one, and its original and renditions as images a browser can open."""

from __future__ import annotations

import json

import faust
from aiohttp import web

from imaging.errors import (
    ConfigurationError,
    ImgstreamError,
    ObjectMissing,
    PermanentError,
    RetryableError,
)
from services import image_queries
from services.object_store import ObjectUri
from streams.api import documents
from streams.api.documents import IMAGE_ID, RENDITION, BadRequest, Links
from streams.api.signing import signed_path, valid_signature
from streams.app import Worker
from streams.auth import ADMIN, UPLOADER, authorized
from streams.deletion import delete_image
from streams.http_status import api_error
from streams.ingest import RetryRefused
from streams.redrive import request_enhancement
from streams.trust import original_uri

_CONTENT_TYPES = {"jpg": "image/jpeg", "webp": "image/webp"}


def links_for(request: web.Request, worker: Worker) -> Links:
    """Absolute, signed URLs on the worker that answered (they open without a key)."""
    base = f"{request.scheme}://{request.host}"
    secret = worker.settings.signing_key

    def original(image_id: str) -> str:
        return base + signed_path(secret, f"/api/images/{image_id}/original")

    def rendition(image_id: str, file: str) -> str:
        return base + signed_path(secret, f"/api/images/{image_id}/renditions/{file}")

    return Links(original=original, rendition=rendition,
                 cdn_domain=worker.settings.cdn_domain)


def denied(request: web.Request, worker: Worker, role: str) -> web.Response | None:
    """The 401 answer when the request lacks a key of ``role`` (None: it may go on)."""
    if authorized(request, worker.settings, role):
        return None
    need = "an admin key" if role == ADMIN else "an API key"
    return api_error("unauthorized", f"{need} is required (X-API-Key)", 401)


def unavailable(exc: Exception) -> web.Response:
    return api_error("unavailable", f"temporarily unavailable, retry: {exc}", 503)


def bad_id(image_id: str) -> web.Response | None:
    if IMAGE_ID.match(image_id):
        return None
    return api_error("invalid_image_id", "an image id is 32 lowercase hex characters", 400)


async def read_json_body(request: web.Request) -> dict:
    """The request's JSON object; an empty body is ``{}``. BadRequest otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def register(worker: Worker) -> None:
    app = worker.app

    @app.page("/api/images")
    class ImageListView(faust.web.View):
        """Photos newest first, filtered; ``next_cursor`` pages on."""

        async def get(self, request: web.Request) -> web.Response:
            if (no := denied(request, worker, UPLOADER)) is not None:
                return no
            try:
                selection = documents.parse_filter(request.query)
                limit = documents.parse_limit(request.query.get("limit"))
                after = documents.decode_cursor(request.query.get("cursor"))
            except BadRequest as exc:
                return api_error("bad_request", str(exc), 400)
            try:
                rows = await image_queries.list_images(
                    worker.resources.db, selection, after, limit,
                    (worker.profile.name, worker.profile.version))
            except RetryableError as exc:
                return unavailable(exc)
            links = links_for(request, worker)
            page = rows[:limit]
            cursor = (documents.encode_cursor(page[-1]["created_at"], page[-1]["id"])
                      if len(rows) > limit else None)
            return web.json_response({
                "items": [documents.summary_document(row, links) for row in page],
                "next_cursor": cursor})

    @app.page("/api/images/{image_id}")
    class ImageView(faust.web.View):
        """GET everything known about one photo; DELETE it (admin)."""

        async def get(self, request: web.Request, image_id: str) -> web.Response:
            answer = await image_answer(request, worker, image_id)
            return answer if isinstance(answer, web.Response) else web.json_response(answer)

        async def delete(self, request: web.Request, image_id: str) -> web.Response:
            if (no := denied(request, worker, ADMIN) or bad_id(image_id)) is not None:
                return no
            try:
                deletion = await delete_image(worker, image_id)
            except RetryableError as exc:
                return unavailable(exc)
            if deletion is None:
                return api_error("not_found", f"no photo {image_id}", 404)
            return web.json_response(deletion.to_document())

    @app.page("/api/images/{image_id}/quality")
    class QualityView(faust.web.View):
        """The photo's quality reports, before and after, under its current profile."""

        async def get(self, request: web.Request, image_id: str) -> web.Response:
            answer = await image_answer(request, worker, image_id)
            if isinstance(answer, web.Response):
                return answer
            return web.json_response({"image_id": image_id, **answer["quality"]})

    @app.page("/api/images/{image_id}/enhance")
    class EnhanceView(faust.web.View):
        """POST (admin) ``{"profile": NAME, "force": false}``: enhance the photo again."""

        async def post(self, request: web.Request, image_id: str) -> web.Response:
            if (no := denied(request, worker, ADMIN) or bad_id(image_id)) is not None:
                return no
            try:
                body = await read_json_body(request)
                unknown = sorted(set(body) - {"profile", "force"})
                if unknown:
                    raise BadRequest(f"unknown fields {unknown}")
                profile = profile_named(worker, body.get("profile"))
                force = body.get("force", False)
                if not isinstance(force, bool):
                    raise BadRequest("force must be true or false")
            except BadRequest as exc:
                return api_error("bad_request", str(exc), 400)
            try:
                done = await request_enhancement(worker, image_id, profile, force=force)
            except RetryRefused as exc:
                return api_error("not_found" if exc.status == 404 else "conflict",
                                 exc.reason, exc.status)
            except RetryableError as exc:
                return unavailable(exc)
            except PermanentError as exc:
                return api_error("conflict", str(exc), 409)
            return web.json_response(
                {"image_id": image_id, "job_id": done.job_id, "status": done.status,
                 "profile": profile.ref},
                status=202 if done.status == "queued" else 200)

    @app.page("/api/images/{image_id}/original")
    class OriginalView(faust.web.View):
        """The photo as uploaded (a signed link, or a request with an API key)."""

        async def get(self, request: web.Request, image_id: str) -> web.Response:
            path = f"/api/images/{image_id}/original"
            if (no := image_access(request, worker, path) or bad_id(image_id)) is not None:
                return no
            try:
                row = await worker.resources.db.fetchone(
                    "SELECT original_url FROM product_images WHERE image_id = %s",
                    (image_id,))
                if row is None:
                    return api_error("not_found", f"no photo {image_id}", 404)
                uri = original_uri(row["original_url"], worker.settings)
                data = await worker.resources.store.get(uri, keep=True)
            except ObjectMissing:
                return api_error("not_found", f"the original of {image_id} is gone", 404)
            except RetryableError as exc:
                return unavailable(exc)
            return image_response(data, sniff_type(data), immutable=True)

    @app.page("/api/images/{image_id}/renditions/{file}")
    class RenditionView(faust.web.View):
        """A published rendition (``large.jpg``, ``thumb.webp``...): the same bytes
        as its CDN alias, for places without the CDN (the embedded stack)."""

        async def get(self, request: web.Request, image_id: str, file: str) -> web.Response:
            path = f"/api/images/{image_id}/renditions/{file}"
            if (no := image_access(request, worker, path) or bad_id(image_id)) is not None:
                return no
            match = RENDITION.match(file)
            if match is None:
                return api_error("not_found", "renditions are large or thumb, .jpg or .webp",
                                 404)
            name, extension = match.groups()
            uri = ObjectUri(worker.settings.enhanced_bucket,
                            f"enhanced/{image_id}/current-{name}.{extension}")
            try:
                data = await worker.resources.store.get(uri)
            except ObjectMissing:
                return api_error("not_found", f"{image_id} has no published {file}", 404)
            except (RetryableError, ImgstreamError) as exc:
                return unavailable(exc)
            return image_response(data, _CONTENT_TYPES[extension], immutable=False)


async def image_answer(request: web.Request, worker: Worker, image_id: str
                       ) -> dict | web.Response:
    """The photo's document (``GET /api/images/{id}``), or the error to answer with."""
    if (no := denied(request, worker, UPLOADER) or bad_id(image_id)) is not None:
        return no
    try:
        found = await image_queries.image_detail(worker.resources.db, image_id)
    except RetryableError as exc:
        return unavailable(exc)
    if found is None:
        return api_error("not_found", f"no photo {image_id}", 404)
    return documents.image_document(found["image"], found["quality"], found["jobs"],
                                    found["steps"], found["letter"], links_for(request, worker))


def image_access(request: web.Request, worker: Worker, path: str) -> web.Response | None:
    """Image bytes open with a valid signature, or with an API key."""
    if valid_signature(worker.settings.signing_key, path, request.query.get("expires"),
                       request.query.get("sig")):
        return None
    return denied(request, worker, UPLOADER)


def image_response(data: bytes, content_type: str, *, immutable: bool) -> web.Response:
    cache = "private, max-age=31536000, immutable" if immutable else "private, max-age=60"
    return web.Response(body=data, headers={"Content-Type": content_type,
                                            "Cache-Control": cache})


def sniff_type(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def profile_named(worker: Worker, name: object):
    """The worker's profile, or another one it has by ``name``; BadRequest if none."""
    if name is None or name == worker.profile.name:
        return worker.profile
    if not isinstance(name, str) or not name:
        raise BadRequest("profile must be a profile name")
    from imaging.planning import check_routing_models
    from profiles import load_profile

    try:
        profile = load_profile(name, worker.settings.profiles_dir)
        check_routing_models(profile, worker.catalog)
    except (ConfigurationError, OSError, ValueError) as exc:
        raise BadRequest(f"profile {name!r} cannot be used: {exc}") from None
    return profile
