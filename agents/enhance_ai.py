"""enhance_ai: run an approved plan, AI steps through Bedrock (images.ai -> images.enhanced).

Steps run in plan order on the full-size original: local steps as in enhance_local, AI
steps through ``services.bedrock`` (input fitted to the model's limits, result cached
by input hash, model and parameters, so the same work is never paid twice). An AI step
whose call finally fails - content filter, rejected input, retries exhausted - runs its
local fallback with the reason recorded. What was really spent goes back to the budget
day's owner as an ``AISpendSettled`` (images.ai.budget) before the result moves on; if the
event cannot be processed at all, the reservation is still settled (or released) before
the event is dead-lettered, so no reservation is left hanging.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from functools import partial
from typing import Any

import numpy as np

from imaging.ai_io import apply_model_output, prepare_model_input
from imaging.decoding import decode_image
from imaging.enhancement import StepResult, apply_plan, encode_intermediate
from imaging.errors import ForgedEvent, PermanentError
from services.bedrock import ModelCallFailed, ModelInvocation
from services.object_store import ObjectUri
from services.usage_records import save_ai_usage
from streams.app import Worker
from streams.budget import to_micros, to_usd
from streams.deletion import is_deleted
from streams.metrics import AI_STEPS
from streams.processing import Stage
from streams.records import AIEnhancementApproved, AISpendSettled, ImageEnhanced, deterministic_id
from streams.trust import check_approval, original_uri

log = logging.getLogger(__name__)

STAGE = "enhance_ai"

# Usage of the request being processed, by request id: what the failure hook settles.
_usage_in_flight: dict[str, list[dict[str, Any]]] = {}
# One run per request at a time: a duplicate approval waits and then hits the cache
# instead of paying for the same call concurrently.
_request_locks: dict[str, asyncio.Lock] = {}


def _decode(data: bytes, max_side: int) -> np.ndarray:
    return decode_image(data, max_side).bgr  # no larger than the largest rendition


def _usage(step: dict[str, Any], invocation: ModelInvocation | None, attempts: int,
           latency_ms: float, error: str | None, charged: float = 0.0) -> dict[str, Any]:
    return {
        "order": step["order"], "operation": step["operation"], "model_id": step["model_id"],
        "cost_usd": invocation.cost_usd if invocation else charged,
        "paid": bool(invocation and invocation.paid),
        "cache_hit": bool(invocation and invocation.cache_hit),
        "attempts": invocation.attempts if invocation else attempts,
        "latency_ms": round(latency_ms, 2), "success": error is None, "error": error,
    }


async def run_ai_step(bgr: np.ndarray, step: dict[str, Any], request_id: str,
                      unspent_micros: int, worker: Worker, image_id: str | None = None
                      ) -> tuple[np.ndarray, StepResult, dict[str, Any]]:
    """One AI step: the model's result, or the local fallback after a final failure.

    A new paid call is made only when its price fits what is left of the reservation.
    """
    loop = asyncio.get_running_loop()
    image_pool = worker.image_pool
    started = time.perf_counter()
    entry = worker.catalog.get(step["model_id"])
    invocation: ModelInvocation | None = None
    attempts, charged = 0, 0.0
    if to_micros(entry.price_usd) > to_micros(step["estimated_cost_usd"]):
        error = (f"price_changed: {entry.id} costs ${entry.price_usd:.4f}, "
                 f"${step['estimated_cost_usd']:.4f} was reserved")
    else:
        try:
            prepared = await loop.run_in_executor(image_pool, prepare_model_input, bgr, entry,
                                                  step)
            invocation = await worker.resources.bedrock.invoke(
                entry.id, prepared, request_id,
                may_pay=to_micros(entry.price_usd) <= unspent_micros, image_id=image_id)
            result = await loop.run_in_executor(image_pool, apply_model_output, bgr,
                                                invocation.output, prepared, step)
        except ModelCallFailed as exc:
            error, attempts, charged = f"ai_failed: {exc.reason}", exc.attempts, exc.charged_usd
        except PermanentError as exc:
            error = f"ai_failed: {exc}"
        else:
            latency = (time.perf_counter() - started) * 1000
            AI_STEPS.labels(step["operation"], "cache_hit" if invocation.cache_hit else "ai").inc()
            details = f"attempts={invocation.attempts}; cache_hit={invocation.cache_hit}"
            return result, StepResult(
                order=step["order"], operation=step["operation"], method="ai",
                model_id=entry.id, success=True, latency_ms=round(latency, 2),
                cost_usd=invocation.cost_usd, details=details, fallback_reason=None,
            ), _usage(step, invocation, attempts, latency, None)
    AI_STEPS.labels(step["operation"], "fallback").inc()
    log.warning("%s: %s step of request %s falls back to local: %s", STAGE,
                step["operation"], request_id, error)
    fallback = {**step, "method": "local", "estimated_cost_usd": 0.0, "fallback_reason": error}
    result, [local] = await loop.run_in_executor(image_pool, apply_plan, bgr, [fallback])
    latency = (time.perf_counter() - started) * 1000
    # Money paid for an output that could not be used is still on the step's record.
    local = dataclasses.replace(local, latency_ms=round(latency, 2),
                                cost_usd=invocation.cost_usd if invocation else charged)
    return result, local, _usage(step, invocation, attempts, latency, error, charged)


def settlement_for(approval: AIEnhancementApproved, usage: list[dict[str, Any]]
                   ) -> AISpendSettled:
    spent = sum(to_micros(u["cost_usd"]) for u in usage)
    return AISpendSettled.new(
        event_id=deterministic_id("AISpendSettled", approval.reservation_id),
        request_id=approval.request_id,
        reservation_id=approval.reservation_id,
        image_id=approval.image_id,
        job_id=approval.job_id,
        budget_key=approval.budget_key,
        budget_day=approval.budget_day,
        reserved_usd=approval.reserved_usd,
        settled_usd=to_usd(spent),
        outcome="settled" if spent else "released",
        usage=usage,
    )


async def enhance_approved(approval: AIEnhancementApproved, worker: Worker) -> None:
    check_approval(approval, worker.settings)  # before anything can be paid
    if await is_deleted(worker, approval.image_id):
        # Nothing is called; settling nothing releases the reservation.
        await worker.send("ai_budget", settlement_for(approval, []))
        return
    lock = _request_locks.setdefault(approval.request_id, asyncio.Lock())
    try:
        async with lock:
            await _enhance(approval, worker)
    finally:
        if not lock.locked():
            _request_locks.pop(approval.request_id, None)


async def _enhance(approval: AIEnhancementApproved, worker: Worker) -> None:
    plan = approval.plan
    loop = asyncio.get_running_loop()
    image_pool, store = worker.image_pool, worker.resources.store
    usage = _usage_in_flight.setdefault(approval.request_id, [])
    usage.clear()  # a retry of the whole event starts again (paid calls come from the cache)
    data = await store.get(original_uri(plan["source_uri"], worker.settings), keep=True)
    max_side = worker.profile_for(approval.plan["profile"]).outputs.large_max_side
    bgr = await loop.run_in_executor(image_pool, _decode, data, max_side)
    results: list[StepResult] = []
    unspent = to_micros(approval.reserved_usd)
    for step in sorted(plan["steps"], key=lambda s: s["order"]):
        if step["method"] == "ai":
            bgr, result, use = await run_ai_step(bgr, step, approval.request_id, unspent,
                                                 worker, approval.image_id)
            if use["paid"]:
                unspent -= to_micros(use["cost_usd"])
            usage.append(use)
        else:
            bgr, [result] = await loop.run_in_executor(image_pool, apply_plan, bgr, [step])
        results.append(result)
    image = await loop.run_in_executor(image_pool, encode_intermediate, bgr)
    target = ObjectUri(worker.settings.enhanced_bucket,
                       f"work/{approval.job_id}/enhanced.jpg")
    # AI results cannot be made again for free: the stored intermediate is the fallback,
    # the pixels left here spare finalize its decode.
    await store.put(target, image, "image/jpeg", keep=False)
    worker.handoff.leave(approval.job_id, bgr)
    # Settle before the result moves on: the money is accounted for whatever happens next,
    # in MySQL first (a broker that loses the settlement event keeps no record of it).
    settlement = settlement_for(approval, usage)
    await save_ai_usage(worker.resources.db, settlement)
    await worker.send("ai_budget", settlement)
    _usage_in_flight.pop(approval.request_id, None)
    event = ImageEnhanced.new(
        event_id=deterministic_id("ImageEnhanced", approval.job_id),
        image_id=approval.image_id,
        job_id=approval.job_id,
        source_uri=plan["source_uri"],
        enhanced_uri=str(target),
        profile=plan["profile"],
        steps=[r.as_dict() for r in results],
        total_cost_usd=to_usd(sum(to_micros(r.cost_usd) for r in results)),
        ai_used=any(r.method == "ai" and r.success for r in results),
        plan=plan,
    )
    await worker.send("enhanced", event)


async def settle_before_dead_letter(approval: AIEnhancementApproved, exc: Exception,
                                    worker: Worker) -> None:
    """The event is lost to the pipeline, but its reservation must not hang. A forged
    approval names no reservation of its own: settling it could free someone else's."""
    if isinstance(exc, ForgedEvent):
        return
    usage = _usage_in_flight.pop(approval.request_id, [])
    delay = 0.5
    while True:  # only an outage stops this; the dead-letter write would wait too
        try:
            settlement = settlement_for(approval, usage)
            await save_ai_usage(worker.resources.db, settlement)
            await worker.send("ai_budget", settlement)
            return
        except Exception as send_exc:
            log.warning("%s: settlement send failed (%s), retrying", STAGE, send_exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def register(worker: Worker) -> None:
    stage = Stage(STAGE, AIEnhancementApproved, partial(enhance_approved, worker=worker),
                  worker.topics.dead_letter,
                  on_failure=partial(settle_before_dead_letter, worker=worker))

    worker.run_stage(worker.topics.ai, stage, concurrency=worker.settings.image_threads)
