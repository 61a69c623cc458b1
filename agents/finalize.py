"""finalize: publish the web renditions (images.enhanced -> images.completed).

``imaging.publishing`` checks the enhanced image against the original (the content gate:
product whole, structure and colours kept), re-assesses the large JPEG honestly (at the
original's size and resolution) and keeps the original whenever the result fails either
(the reason and the gate's measures are recorded; AI money spent on a result that is not
published is counted). A local result the gate refuses is made again without the steps
it blames, and published if that passes (the steps say what was left out). Renditions
are stored under versioned keys (content hash + profile version: a URL changes when the
content does) plus a stable alias per rendition that the CDN sink invalidates.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import numpy as np

from imaging.assessment import QualityReport
from imaging.enhancement import enhance_again
from imaging.publishing import publish_result, steps_as_published
from services.object_store import ObjectUri
from streams.app import Worker
from streams.deletion import is_deleted
from streams.metrics import AI_PAID_NOT_PUBLISHED
from streams.processing import Stage
from streams.records import ImageCompleted, ImageEnhanced, deterministic_id
from streams.trust import intermediate_uri, original_uri

STAGE = "finalize"


def summary(report: QualityReport) -> dict:
    j = report.judgement
    return {"overall_score": j.overall_score, "tier": j.tier, "issues": j.issues,
            "scores": j.scores,
            "metrics": report.event_metrics()}


async def enhanced_image(enhanced: ImageEnhanced, original: bytes, worker: Worker
                         ) -> np.ndarray | bytes:
    """The enhanced pixels left in this process by the enhance stage; else the stored
    intermediate of an AI plan, or a local plan enhanced again from the original."""
    pixels = worker.handoff.take(enhanced.job_id)
    if pixels is not None:
        return pixels
    if enhanced.ai_used or any(s.get("method") == "ai" for s in enhanced.plan["steps"]):
        uri = intermediate_uri(enhanced.enhanced_uri, enhanced.job_id, worker.settings)
        return await worker.resources.store.get(uri)
    loop = asyncio.get_running_loop()
    max_side = worker.profile_for(enhanced.profile).outputs.large_max_side
    return await loop.run_in_executor(worker.image_pool, enhance_again, original,
                                      enhanced.plan["steps"], max_side)


async def finalize_image(enhanced: ImageEnhanced, worker: Worker) -> None:
    started = time.perf_counter()
    plan = enhanced.plan
    if await is_deleted(worker, enhanced.image_id):
        return  # never publish a deleted photo again
    store, settings, image_pool = worker.resources.store, worker.settings, worker.image_pool
    skipped = bool(plan["skip"])
    profile = worker.profile_for(enhanced.profile)
    loop = asyncio.get_running_loop()
    original = await store.get(original_uri(enhanced.source_uri, settings), keep=True)
    result = None if skipped else await enhanced_image(enhanced, original, worker)
    publication = await loop.run_in_executor(
        image_pool, publish_result, original, result, plan["before"]["overall_score"],
        enhanced.steps, profile, plan["steps"])
    renditions = publication.renditions

    outputs, writes = [], []
    version = enhanced.profile["version"]
    for r in renditions:
        versioned = ObjectUri(settings.enhanced_bucket,
                              f"enhanced/{enhanced.image_id}/{r.name}-{r.sha256[:16]}-"
                              f"p{version}.{r.extension}")
        alias = ObjectUri(settings.enhanced_bucket,
                          f"enhanced/{enhanced.image_id}/current-{r.name}.{r.extension}")
        # Versioned keys are content-addressed: a create-only PUT, a redelivery writes nothing.
        writes += [store.put_if_absent(versioned, r.data, r.content_type, keep=False),
                   store.put(alias, r.data, r.content_type)]
        for uri, is_alias in ((versioned, False), (alias, True)):
            outputs.append({"name": r.name, "format": r.format, "width": r.width,
                            "height": r.height, "uri": str(uri), "size_bytes": len(r.data),
                            "url": f"https://{settings.cdn_domain}/{uri.key}",
                            "alias": is_alias})
    await asyncio.gather(*writes)
    large = next(o for o in outputs if o["name"] == "large" and o["format"] == "jpeg"
                 and not o["alias"])
    steps = steps_as_published(enhanced.steps, publication)
    paid_not_published = enhanced.total_cost_usd if publication.kept_original else 0.0
    if paid_not_published:
        AI_PAID_NOT_PUBLISHED.inc(paid_not_published)
    event = ImageCompleted.new(
        event_id=deterministic_id("ImageCompleted", enhanced.job_id),
        image_id=enhanced.image_id,
        job_id=enhanced.job_id,
        seller_id=plan["seller_id"],
        sku_id=plan["sku_id"],
        seller_label=plan.get("seller_label"),
        sku_label=plan.get("sku_label"),
        status="skipped" if skipped else "completed",
        profile=enhanced.profile,
        before=plan["before"],
        # The original's own pixels were published: their quality is the report's.
        after=summary(publication.after) if publication.after else plan["before"],
        kept_original=publication.kept_original,
        kept_original_reason=publication.reason,
        gate=publication.gate,
        paid_not_published_usd=paid_not_published,
        steps=steps,
        total_cost_usd=enhanced.total_cost_usd,
        ai_used=enhanced.ai_used,
        outputs=outputs,
        cdn_url=large["url"],
        processing_ms=round(sum(s.get("latency_ms", 0) for s in steps)
                            + (time.perf_counter() - started) * 1000, 2),
    )
    await worker.send("completed", event)


def register(worker: Worker) -> None:
    stage = Stage(STAGE, ImageEnhanced, partial(finalize_image, worker=worker),
                  worker.topics.dead_letter)

    worker.run_stage(worker.topics.enhanced, stage, concurrency=worker.settings.image_threads)
