"""enhance_ai's handlers with a fake Bedrock: paid results, fallbacks, settlement."""

import cv2
import numpy as np
import pytest

from agents.budget_gate import approval_for
from agents.enhance_ai import enhance_approved, settle_before_dead_letter
from imaging.errors import ForgedEvent, ObjectMissing
from services.bedrock import ModelCallFailed, ModelInvocation
from streams.budget import Reservation
from tests.unit.agents.fakes import FakeWorker
from tests.unit.agents.test_budget_gate import _request
from tests.unit.agents.test_budget_gate import worker as worker


class FakeBedrock:
    """Answers with a white PNG of the input's size (paid), or fails as told."""

    def __init__(self, failure: ModelCallFailed | None = None) -> None:
        self.failure = failure
        self.calls: list[tuple[str, str, bool]] = []

    async def invoke(self, model_id, prepared, request_id, may_pay=True, image_id=None):
        self.calls.append((model_id, request_id, may_pay))
        if self.failure is not None:
            raise self.failure
        width, height = prepared.source_size
        png = cv2.imencode(".png", np.full((height, width, 3), 255, np.uint8))[1].tobytes()
        return ModelInvocation(model_id=model_id, output=png, output_format="png",
                               cost_usd=0.07, paid=True, cache_hit=False, attempts=1,
                               latency_ms=3.0, cache_key="k")


async def _approval(worker: FakeWorker):
    request = await _request(worker)
    reservation = Reservation(id=request.request_id, day=request.budget_day,
                              amount=70_000, by_operation={"background": 70_000})
    return approval_for(request, reservation, worker.settings.signing_key)


async def test_a_paid_step_is_settled_before_the_result_moves_on(worker):
    worker.resources.bedrock = FakeBedrock()
    approval = await _approval(worker)
    await enhance_approved(approval, worker)
    topics = [topic for topic, _, _ in worker.sent]
    assert topics[-2:] == ["ai_budget", "enhanced"]
    settlement, enhanced = worker.sent_to("ai_budget")[0], worker.sent_to("enhanced")[0]
    assert settlement.outcome == "settled" and settlement.settled_usd == pytest.approx(0.07)
    assert [key for topic, key, _ in worker.sent if topic == "ai_budget"] == [approval.budget_key]
    assert enhanced.ai_used and enhanced.total_cost_usd == pytest.approx(0.07)


async def test_the_money_is_in_mysql_before_the_settlement_is_sent(worker):
    # A broker that loses the settlement event (restarted empty) must not lose the record
    # of the money: the budget of its next life is rebuilt from ai_usage_logs.
    worker.resources.bedrock = FakeBedrock()
    approval = await _approval(worker)
    recorded_at_send = []
    send = worker.send

    async def recording_send(topic, event):
        if topic == "ai_budget":
            recorded_at_send.extend(args for sql, args in worker.resources.db.statements
                                    if sql.startswith("INSERT IGNORE INTO ai_usage_logs"))
        await send(topic, event)

    worker.send = recording_send
    await enhance_approved(approval, worker)
    [row] = recorded_at_send
    assert row[0] == approval.request_id and row[8] == pytest.approx(0.07)


async def test_a_failed_call_falls_back_to_the_local_step_and_pays_nothing(worker):
    worker.resources.bedrock = FakeBedrock(ModelCallFailed("content_filtered: test"))
    await enhance_approved(await _approval(worker), worker)
    [settlement] = worker.sent_to("ai_budget")
    [enhanced] = worker.sent_to("enhanced")
    assert settlement.outcome == "released" and settlement.settled_usd == 0.0
    assert not enhanced.ai_used
    assert enhanced.steps[0]["fallback_reason"].startswith("ai_failed: content_filtered")


async def test_an_event_that_cannot_run_still_settles_its_reservation(worker):
    worker.resources.bedrock = FakeBedrock()
    approval = await _approval(worker)
    worker.resources.store.objects.clear()
    with pytest.raises(ObjectMissing):
        await enhance_approved(approval, worker)
    await settle_before_dead_letter(approval, ObjectMissing("gone"), worker)
    [settlement] = worker.sent_to("ai_budget")
    assert settlement.reservation_id == approval.reservation_id
    assert settlement.outcome == "released"


@pytest.mark.parametrize("change", [
    {"reserved_usd": 5.0},
    {"plan": "replace"},
    {"reservation_id": "f" * 32},
], ids=["more-money", "another-plan", "another-reservation"])
async def test_a_forged_or_altered_approval_pays_nothing(worker, change):
    worker.resources.bedrock = FakeBedrock()
    approval = await _approval(worker)
    if change.get("plan") == "replace":
        change = {"plan": {**approval.plan, "steps": approval.plan["steps"] * 2}}
    for field, value in change.items():
        setattr(approval, field, value)
    with pytest.raises(ForgedEvent, match="not issued by the budget gate") as refused:
        await enhance_approved(approval, worker)
    await settle_before_dead_letter(approval, refused.value, worker)  # the failure hook
    assert worker.resources.bedrock.calls == [] and worker.sent_to("ai_budget") == []


async def test_an_approval_signed_with_another_key_is_refused(worker):
    worker.resources.bedrock = FakeBedrock()
    request = await _request(worker)
    reservation = Reservation(id=request.request_id, day=request.budget_day,
                              amount=70_000, by_operation={"background": 70_000})
    forged = approval_for(request, reservation, "guessed-key")
    with pytest.raises(ForgedEvent):
        await enhance_approved(forged, worker)
    assert worker.resources.bedrock.calls == []


async def test_a_deleted_photo_is_not_paid_for_and_its_reservation_is_released(worker):
    worker.resources.bedrock = FakeBedrock()
    approval = await _approval(worker)
    worker.resources.db.deleted.add(approval.image_id)
    await enhance_approved(approval, worker)
    assert worker.resources.bedrock.calls == []
    [settlement] = worker.sent_to("ai_budget")
    assert settlement.outcome == "released" and settlement.settled_usd == 0.0
    assert worker.sent_to("enhanced") == []
