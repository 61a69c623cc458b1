"""HTTP status codes, chosen here at the HTTP boundary from the errors' stable codes."""

from __future__ import annotations

#: Too big is 413, not an image we take is 415, an image we cannot use is 422.
_REJECTION_STATUS = {
    "file_too_large": 413,
    "image_too_large": 413,
    "not_an_image": 415,
    "unsupported_format": 415,
    "animated_image": 415,
    "type_mismatch": 415,
    "image_too_small": 422,
    "corrupt_image": 422,
}


def rejection_status(code: str) -> int:
    """The status an upload rejected with ``code`` is answered with (400 by default)."""
    return _REJECTION_STATUS.get(code, 400)


def api_error(code: str, message: str, status: int):
    """The API's error answer: ``{error, message}`` (``reason`` repeats the message for
    clients written against the first upload API)."""
    from aiohttp import web

    return web.json_response({"error": code, "message": message, "reason": message},
                             status=status)
