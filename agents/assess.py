"""assess: every uploaded photo gets a quality report (images.uploaded -> images.assessed).

Replays (images.replay, sent by ``imgstream replay``) are assessed by a second agent of
this stage under the profile they name, on their own stream: a catalog replay never
holds up live uploads.

Fetch the original, check it is the content the event names, run ``assess_quality`` in
the image thread pool (never on the event loop), record the `before` metrics and status
`analyzed` in MySQL, emit the public ``QualityAssessed`` event. A missing object or an
undecodable image is dead-lettered with the reason; store and database outages are
retried. The event id is derived from (image, profile name, version): reprocessing the
same photo under the same profile is recognisably the same result.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial

from imaging.assessment import QualityReport, assess_quality
from imaging.errors import PermanentError
from imaging.profile import Profile
from services.quality_records import save_assessment
from streams.app import Worker
from streams.deletion import is_deleted
from streams.processing import Stage
from streams.records import ImageUploaded, QualityAssessed, ReplayRequested, deterministic_id
from streams.trust import check_upload_identity, original_uri

STAGE = "assess"


def build_event(uploaded: ImageUploaded, report: QualityReport, profile: Profile
                ) -> QualityAssessed:
    judgement = report.judgement
    metrics = report.event_metrics()
    metrics["working_scale"] = round(report.working_scale, 4)
    return QualityAssessed.new(
        event_id=deterministic_id("QualityAssessed", uploaded.image_id, profile.name,
                                  profile.version),
        image_id=uploaded.image_id,
        seller_id=uploaded.seller_id,
        sku_id=uploaded.sku_id,
        seller_label=uploaded.seller_label,
        sku_label=uploaded.sku_label,
        original_uri=uploaded.original_uri,
        content_sha256=uploaded.content_sha256,
        profile=profile.ref,
        metrics=metrics,
        scores=judgement.scores,
        overall_score=judgement.overall_score,
        tier=judgement.tier,
        issues=judgement.issues,
        recommendations=[r.as_dict() for r in judgement.recommendations],
        subject=report.subject,
        assessment_ms=round(report.elapsed_ms, 2),
    )


async def assess_uploaded(uploaded: ImageUploaded, worker: Worker,
                          profile: Profile | None = None) -> None:
    profile = profile or worker.profile
    check_upload_identity(uploaded)
    if await is_deleted(worker, uploaded.image_id):
        return  # its seller deleted it: a late or replayed event must not revive it
    store = worker.resources.store
    data = await store.get(original_uri(uploaded.original_uri, worker.settings), keep=True)
    if hashlib.sha256(data).hexdigest() != uploaded.content_sha256:
        raise PermanentError(f"{uploaded.original_uri} does not hold the content the event "
                             "names (sha256 mismatch)")
    loop = asyncio.get_running_loop()
    report = await loop.run_in_executor(worker.image_pool, assess_quality, data, profile)
    event = build_event(uploaded, report, profile)
    await save_assessment(worker.resources.db, event)
    await worker.send("assessed", event)


async def assess_replayed(request: ReplayRequested, worker: Worker) -> None:
    uploaded = ImageUploaded.from_document(request.uploaded)
    if uploaded.image_id != request.image_id:
        raise PermanentError("replay request names another image than its upload")
    await assess_uploaded(uploaded, worker, worker.profile_for(request.profile))


def register(worker: Worker) -> None:
    topics = worker.topics
    stage = Stage(STAGE, ImageUploaded, partial(assess_uploaded, worker=worker),
                  topics.dead_letter)
    replay_stage = Stage("assess_replay", ReplayRequested,
                         partial(assess_replayed, worker=worker), topics.dead_letter)

    worker.run_stage(topics.uploaded, stage, concurrency=worker.settings.image_threads)
    worker.run_stage(topics.replay, replay_stage)
