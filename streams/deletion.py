"""Delete a photo at its seller's request (``DELETE /api/images/{id}``).

Order: the tombstone first (``deleted_images``: from then on every stage ignores events
of the photo, so an in-flight one cannot publish it again), then the objects (every
rendition and alias, the intermediates of its jobs, the original and the AI cache
entries made from it when no other listing shares those bytes), the CDN paths, and the
rows. Kept for audit: ``ai_usage_logs`` (what was spent, on which request, for which
image id) and the tombstone itself (image id, content hash, when).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.ai_cache import AiCache
from services.cloudfront import CloudFront
from services.object_store import ObjectUri
from streams.app import Worker
from streams.invalidations import path_for_key
from streams.records import job_id_for

log = logging.getLogger(__name__)

# Child rows first: foreign keys point at product_images and enhancement_jobs.
_ROWS = (
    "DELETE s FROM processing_steps s JOIN enhancement_jobs j ON j.job_id = s.job_id"
    " WHERE j.image_id = %s",
    "DELETE FROM quality_metrics WHERE image_id = %s",
    "DELETE FROM enhancement_jobs WHERE image_id = %s",
    "DELETE FROM enhance_requests WHERE image_id = %s AND batch_id IS NULL",
    # A batch keeps its count: the photo's place in it reads "cancelled".
    "UPDATE enhance_requests SET state = 'cancelled' WHERE image_id = %s AND state = 'queued'",
    "DELETE FROM dead_letters WHERE image_id = %s",
    "DELETE FROM product_images WHERE image_id = %s",
)


@dataclass(frozen=True)
class Deletion:
    image_id: str
    objects: int
    rows: int
    cdn_paths: int

    def to_document(self) -> dict:
        return {"image_id": self.image_id,
                "deleted": {"objects": self.objects, "rows": self.rows,
                            "cdn_paths": self.cdn_paths}}


async def is_deleted(worker: Worker, image_id: str) -> bool:
    """Was the photo deleted? Stages ask before acting on one of its events."""
    row = await worker.resources.db.fetchone(
        "SELECT 1 AS gone FROM deleted_images WHERE image_id = %s", (image_id,))
    return row is not None


async def delete_image(worker: Worker, image_id: str) -> Deletion | None:
    """Remove everything of the photo; None when there is no such photo."""
    db, store, settings = worker.resources.db, worker.resources.store, worker.settings
    image = await db.fetchone(
        "SELECT image_id, content_sha256, original_url FROM product_images"
        " WHERE image_id = %s", (image_id,))
    if image is None:
        return None
    await db.execute("INSERT IGNORE INTO deleted_images (image_id, content_sha256)"
                     " VALUES (%s, %s)", (image_id, image["content_sha256"]))
    jobs = {row["job_id"] for row in await db.fetchall(
        "SELECT job_id FROM enhancement_jobs WHERE image_id = %s UNION"
        " SELECT job_id FROM enhance_requests WHERE image_id = %s", (image_id, image_id))}
    jobs.add(job_id_for(image_id, worker.profile.name, worker.profile.version))
    shared = await db.fetchone(
        "SELECT COUNT(*) AS n FROM product_images p WHERE p.content_sha256 = %s"
        " AND p.image_id <> %s AND NOT EXISTS (SELECT 1 FROM deleted_images d"
        " WHERE d.image_id = p.image_id)", (image["content_sha256"], image_id))
    bytes_shared = bool(shared and shared["n"])

    objects = 0
    published = await store.keys(settings.enhanced_bucket, f"enhanced/{image_id}/")
    for key in published:
        await store.delete(ObjectUri(settings.enhanced_bucket, key))
        objects += 1
    for job_id in sorted(jobs):
        for key in await store.keys(settings.enhanced_bucket, f"work/{job_id}/"):
            await store.delete(ObjectUri(settings.enhanced_bucket, key))
            objects += 1
    if not bytes_shared:
        await store.delete(ObjectUri.parse(image["original_url"]))
        objects += 1
        objects += await AiCache(store, settings.ai_cache_bucket).forget_image(image_id)

    paths = sorted({path_for_key(key) for key in published})
    if paths:
        cdn = worker.state.setdefault("deletion_cdn", CloudFront(settings))
        await cdn.invalidate([f"/enhanced/{image_id}/*"], f"delete-{image_id}")

    rows = 0
    async with db.transaction() as conn, conn.cursor() as cur:
        for statement in _ROWS:
            rows += await cur.execute(statement, (image_id,))
    log.info("deleted photo %s: %d objects, %d rows, %d CDN paths", image_id, objects, rows,
             len(paths))
    return Deletion(image_id, objects, rows, len(paths))
