"""enhance_local: run a plan's steps with OpenCV/Pillow (images.enhance.local -> images.enhanced).

Fetch the original, decode it at full size (EXIF orientation applied), apply the steps in
the image thread pool, store the intermediate under a key derived from the job
(a redelivery overwrites it with the same bytes), emit ``ImageEnhanced``. A skipped plan
passes straight through without image work.
"""

from __future__ import annotations

import asyncio
from functools import partial

from imaging.decoding import decode_image
from imaging.enhancement import apply_plan, encode_intermediate
from services.object_store import ObjectUri
from streams.app import Worker
from streams.deletion import is_deleted
from streams.processing import Stage
from streams.records import EnhancementPlan, ImageEnhanced, deterministic_id
from streams.trust import original_uri

STAGE = "enhance_local"


def _enhance(data: bytes, steps: list[dict]) -> tuple[bytes, list[dict]]:
    bgr = decode_image(data).bgr
    result, step_results = apply_plan(bgr, steps)
    return encode_intermediate(result), [r.as_dict() for r in step_results]


async def enhance_plan(plan: EnhancementPlan, worker: Worker) -> None:
    if await is_deleted(worker, plan.image_id):
        return
    if plan.skip:
        enhanced_uri, steps = plan.source_uri, []
    else:
        store = worker.resources.store
        data = await store.get(original_uri(plan.source_uri, worker.settings), keep=True)
        loop = asyncio.get_running_loop()
        image, steps = await loop.run_in_executor(worker.image_pool, _enhance, data,
                                                  plan.steps)
        target = ObjectUri(worker.settings.enhanced_bucket,
                           f"work/{plan.job_id}/enhanced.jpg")
        await store.put(target, image, "image/jpeg", keep=True)  # finalize reads it next
        enhanced_uri = str(target)
    event = ImageEnhanced.new(
        event_id=deterministic_id("ImageEnhanced", plan.job_id),
        image_id=plan.image_id,
        job_id=plan.job_id,
        source_uri=plan.source_uri,
        enhanced_uri=enhanced_uri,
        profile=plan.profile,
        steps=steps,
        total_cost_usd=0.0,
        ai_used=False,
        plan=plan.to_document(),
    )
    await worker.send("enhanced", event)


def register(worker: Worker) -> None:
    stage = Stage(STAGE, EnhancementPlan, partial(enhance_plan, worker=worker),
                  worker.topics.dead_letter)

    worker.run_stage(worker.topics.enhance_local, stage,
                     concurrency=worker.settings.image_threads)
