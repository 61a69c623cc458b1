"""The image, batch and statistics API on every worker's web port (``register``).

Views live in one module per resource (``images``, ``batches``, ``stats``); what they
answer is shaped by pure functions in ``documents`` and signed by ``signing``; the
OpenAPI document in ``schemas/openapi.json`` describes all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.app import Worker


def register(worker: Worker) -> None:
    from streams.api import batches, images, openapi, stats

    images.register(worker)
    batches.register(worker)
    stats.register(worker)
    openapi.register(worker)
