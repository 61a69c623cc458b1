"""Enhance a photo again, on request: ``POST /api/images/{id}/enhance`` and batches.

A re-enhancement takes the path a catalog replay takes (a ``ReplayRequested`` on
images.replay, assessed under the named profile); each one is recorded in MySQL
(``enhance_requests``) so the API can say whether one is in flight and a batch can be
followed, cancelled and resumed after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from imaging.profile import Profile
from streams.app import Worker
from streams.deletion import is_deleted
from streams.ingest import RetryRefused, stored_upload
from streams.records import ReplayRequested, deterministic_id, job_id_for

# A re-enhancement not finished after this long no longer blocks another one (its
# events were lost, or it was dead-lettered before any record of it was written).
IN_FLIGHT_SECONDS = 600
_ACTIVE = ("uploaded", "analyzing", "analyzed", "queued", "processing", "enhancing",
           "optimizing")


@dataclass(frozen=True)
class Enhancement:
    image_id: str
    job_id: str
    status: str  # queued: sent now; completed/skipped: already done under this profile


_PENDING = (
    "SELECT r.job_id FROM enhance_requests r"
    " LEFT JOIN enhancement_jobs j ON j.job_id = r.job_id AND j.completed_at >= r.sent_at"
    " WHERE r.image_id = %s AND r.state = 'sent' AND j.job_id IS NULL"
    " AND r.sent_at > CURRENT_TIMESTAMP(3) - INTERVAL %s SECOND"
    " AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.image_id = r.image_id"
    "                 AND d.failed_at >= r.sent_at)"
    " LIMIT 1")


def busy_reason(image_id: str, status: str | None, pending_job: str | None) -> str | None:
    """Why a new enhancement of the photo must wait (None: it need not)."""
    if status is None:
        raise RetryRefused(404, f"no photo {image_id}")
    if status in _ACTIVE:
        return f"photo {image_id} is {status}: its first pass is still running"
    if pending_job:
        return f"photo {image_id} is being enhanced already (job {pending_job})"
    return None


async def claim(worker: Worker, image_id: str, job_id: str, batch_id: str | None) -> None:
    """Record the enhancement as sent, unless one is in flight (RetryRefused 409): the row
    lock makes concurrent requests for one photo take turns."""
    async with worker.resources.db.transaction() as conn, conn.cursor() as cur:
        await cur.execute("SELECT status FROM product_images WHERE image_id = %s FOR UPDATE",
                          (image_id,))
        row = await cur.fetchone()
        await cur.execute(_PENDING, (image_id, IN_FLIGHT_SECONDS))
        pending = await cur.fetchone()
        busy = busy_reason(image_id, row[0] if row else None, pending[0] if pending else None)
        if busy:
            raise RetryRefused(409, busy)
        if batch_id is None:
            await cur.execute(
                "INSERT INTO enhance_requests (batch_id, image_id, job_id, state, sent_at)"
                " VALUES (NULL, %s, %s, 'sent', CURRENT_TIMESTAMP(3))", (image_id, job_id))
        else:
            taken = await cur.execute(
                "UPDATE enhance_requests SET state = 'sent', sent_at = CURRENT_TIMESTAMP(3)"
                " WHERE batch_id = %s AND image_id = %s AND state = 'queued'",
                (batch_id, image_id))
            if not taken:  # another worker sent it, or the batch was cancelled
                raise RetryRefused(409, f"batch {batch_id}: {image_id} is not queued")


async def unclaim(worker: Worker, image_id: str, job_id: str, batch_id: str | None) -> None:
    """The event could not be sent: the request is not in flight after all."""
    if batch_id is None:
        await worker.resources.db.execute(
            "DELETE FROM enhance_requests WHERE batch_id IS NULL AND image_id = %s"
            " AND job_id = %s AND state = 'sent'", (image_id, job_id))
    else:
        await worker.resources.db.execute(
            "UPDATE enhance_requests SET state = 'queued', sent_at = NULL"
            " WHERE batch_id = %s AND image_id = %s", (batch_id, image_id))


async def request_enhancement(worker: Worker, image_id: str, profile: Profile, *,
                              force: bool = False, batch_id: str | None = None
                              ) -> Enhancement:
    """Send the photo through the pipeline again under ``profile``.

    Idempotent: a photo already completed under this profile version is answered with
    that job (``force`` re-runs it; its AI steps come from the cache, never paid twice).
    RetryRefused: 404 unknown or deleted, 409 while an enhancement is in flight.
    """
    db = worker.resources.db
    if await is_deleted(worker, image_id):
        raise RetryRefused(404, f"photo {image_id} was deleted")
    job_id = job_id_for(image_id, profile.name, profile.version)
    if not force:
        done = await db.fetchone(
            "SELECT status FROM enhancement_jobs WHERE job_id = %s", (job_id,))
        if done and done["status"] in ("completed", "skipped"):
            return Enhancement(image_id, job_id, done["status"])
    # Claimed before the original is fetched and validated: a photo that is busy (the
    # batch driver asks again every second) costs one query, not a download and a decode.
    await claim(worker, image_id, job_id, batch_id)
    try:
        uploaded, _ = await stored_upload(image_id, worker)
        await worker.send("replay", ReplayRequested.new(
            event_id=deterministic_id("ReplayRequested", image_id, profile.name,
                                      profile.version),
            replay_id=batch_id or deterministic_id("api-enhance", image_id, job_id),
            image_id=image_id, profile=profile.ref, uploaded=uploaded.to_document()))
    except BaseException:
        await unclaim(worker, image_id, job_id, batch_id)
        raise
    return Enhancement(image_id, job_id, "queued")
