"""enhance_local: run a plan's steps with OpenCV/Pillow (images.enhance.local -> images.enhanced).

Fetch the original, decode it at full size (EXIF orientation applied), apply the steps in
the image thread pool, leave the result in the process for finalize
(``streams/handoff.py``: no intermediate is encoded or stored; finalize enhances again
if it runs elsewhere), emit ``ImageEnhanced``. A skipped plan passes straight through
without image work.
"""

from __future__ import annotations

import asyncio
from functools import partial

import numpy as np

from imaging.decoding import decode_image
from imaging.enhancement import apply_plan
from services.object_store import ObjectUri
from streams.app import Worker
from streams.deletion import is_deleted
from streams.processing import Stage
from streams.records import EnhancementPlan, ImageEnhanced, deterministic_id
from streams.trust import original_uri

STAGE = "enhance_local"


def _enhance(data: bytes, steps: list[dict], max_side: int) -> tuple[np.ndarray, list[dict]]:
    bgr = decode_image(data, max_side).bgr  # no larger than the largest rendition
    result, step_results = apply_plan(bgr, steps)
    return result, [r.as_dict() for r in step_results]


async def enhance_plan(plan: EnhancementPlan, worker: Worker) -> None:
    if await is_deleted(worker, plan.image_id):
        return
    if plan.skip:
        enhanced_uri, steps = plan.source_uri, []
    else:
        store = worker.resources.store
        data = await store.get(original_uri(plan.source_uri, worker.settings), keep=True)
        loop = asyncio.get_running_loop()
        max_side = worker.profile_for(plan.profile).outputs.large_max_side
        pixels, steps = await loop.run_in_executor(worker.image_pool, _enhance, data,
                                                   plan.steps, max_side)
        # finalize takes the pixels from this process (or enhances again where it runs):
        # the intermediate's key is named but never written for a local plan.
        worker.handoff.leave(plan.job_id, pixels)
        enhanced_uri = str(ObjectUri(worker.settings.enhanced_bucket,
                                     f"work/{plan.job_id}/enhanced.jpg"))
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
