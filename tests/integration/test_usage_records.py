"""ai_usage_logs on the real MariaDB: a settlement read back is the settlement sent."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from agents.budget_gate import settlement_from_record
from agents.enhance_ai import settlement_for
from services.database import Database, apply_migrations
from services.usage_records import recorded_usage, save_ai_usage, settled_request
from streams.records import AIEnhancementApproved, deterministic_id

pytestmark = pytest.mark.integration

MODEL = "stability.stable-image-remove-background-v1:0"


def _approval(request_id: str) -> AIEnhancementApproved:
    return AIEnhancementApproved.new(
        event_id=deterministic_id("approval", request_id), request_id=request_id,
        reservation_id=request_id, image_id=uuid.uuid4().hex, job_id=uuid.uuid4().hex,
        budget_key="2026-12-05", budget_day="2026-12-05", reserved_usd=0.1, plan={})


def _use(order: int, operation: str, cost: float, error: str | None = None) -> dict:
    return {"order": order, "operation": operation, "model_id": MODEL, "cost_usd": cost,
            "paid": cost > 0, "cache_hit": False, "attempts": 2, "latency_ms": 812.0,
            "success": error is None, "error": error}


def test_a_settlement_read_back_from_ai_usage_logs_is_the_one_sent(scratch_settings):
    request_id = uuid.uuid4().hex
    approval = _approval(request_id)
    sent = settlement_for(approval, [_use(1, "background", 0.07),
                                     _use(2, "upscale", 0.0, "ai_failed: throttled")])

    async def run():
        db = await Database.connect(scratch_settings)
        try:
            await apply_migrations(db)
            assert await recorded_usage(db, request_id) == []
            await save_ai_usage(db, sent)
            await save_ai_usage(db, settlement_for(approval, [_use(1, "background", 0.5)]))
            return await recorded_usage(db, request_id), await settled_request(db, request_id)
        finally:
            await db.close()

    rows, micros = asyncio.run(run())
    assert micros == 70_000  # the first settlement won
    again = settlement_from_record("2026-12-05", request_id,
                                   {"background": 70_000, "upscale": 30_000}, rows)
    assert again.event_id == sent.event_id and again.usage == sent.usage
    assert (again.image_id, again.job_id) == (sent.image_id, sent.job_id)
    assert (again.settled_usd, again.reserved_usd, again.outcome) == (0.07, 0.1, "settled")
