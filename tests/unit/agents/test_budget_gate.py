"""budget_gate's handlers on in-memory tables: reserve, refuse, settle once, caps."""

import pytest

from agents.assess import assess_uploaded
from agents.budget_gate import BudgetBook, change_day_caps, gate_request, settle_spend
from agents.route import ai_request, build_plan
from streams.budget import Caps
from streams.records import AISpendSettled, BudgetCapChanged, deterministic_id
from tests.unit.agents.fakes import FakeWorker, product_photo, uploaded_photo

DAY = "2026-12-05"
REMOVE_BACKGROUND = "stability.stable-image-remove-background-v1:0"


async def _noop():
    return None


@pytest.fixture
def worker(tmp_path, monkeypatch):
    async def save(db, event):
        return None

    monkeypatch.setattr("agents.assess.save_assessment", save)
    fake = FakeWorker(tmp_path)
    fake.state["budget_gate"] = BudgetBook(days={}, reservations={},
                                           caps=Caps.from_usd(0.10, {}), flush=_noop)
    return fake


async def _request(worker, seller="seller-1"):
    """A real AI request: a photo's plan with a paid background step added."""
    uploaded = uploaded_photo(worker, product_photo(), seller=seller)
    await assess_uploaded(uploaded, worker)
    report = worker.sent_to("assessed")[-1]
    plan = build_plan(report, worker)
    plan.steps = [{"order": 1, "operation": "background", "method": "ai", "params": {},
                   "model_id": REMOVE_BACKGROUND, "estimated_cost_usd": 0.07,
                   "fallback_reason": None}]
    plan.estimated_cost_usd = 0.07
    return ai_request(plan, DAY)


def _settlement(approval, cost):
    return AISpendSettled.new(
        event_id=deterministic_id("s", approval.reservation_id), request_id=approval.request_id,
        reservation_id=approval.reservation_id, image_id=approval.image_id,
        job_id=approval.job_id, budget_key=DAY, budget_day=DAY,
        reserved_usd=approval.reserved_usd, settled_usd=cost,
        outcome="settled" if cost else "released",
        usage=[{"order": 1, "operation": "background", "model_id": REMOVE_BACKGROUND,
                "cost_usd": cost, "paid": cost > 0, "cache_hit": False, "attempts": 1,
                "latency_ms": 5.0, "success": True, "error": None}])


async def test_a_request_that_fits_is_reserved_once_and_approved(worker):
    request = await _request(worker)
    await gate_request(request, worker)
    await gate_request(request, worker)  # redelivered: same reservation, no second one
    approvals = worker.sent_to("ai")
    assert len(approvals) == 2
    assert approvals[0].to_document() | {"occurred_at": None} == \
        approvals[1].to_document() | {"occurred_at": None}  # the same approval again
    assert approvals[0].reserved_usd == pytest.approx(0.07)
    assert [key for topic, key, _ in worker.sent if topic == "ai"] == [request.image_id] * 2
    assert worker.state["budget_gate"].ledger(DAY).reserved == 70_000


async def test_a_request_over_the_cap_runs_locally_with_the_reason(worker):
    await gate_request(await _request(worker, "seller-1"), worker)
    second = await _request(worker, "seller-2")  # 0.07 + 0.07 > 0.10
    await gate_request(second, worker)
    [plan] = worker.sent_to("enhance_local")
    assert plan.image_id == second.image_id and plan.estimated_cost_usd == 0.0
    assert plan.steps[0]["method"] == "local"
    assert plan.steps[0]["fallback_reason"].startswith("budget")


async def test_labels_stay_in_approved_and_downgraded_plans(worker):
    await gate_request(await _request(worker, "Müller GmbH"), worker)
    await gate_request(await _request(worker, "Dupont & Fils"), worker)  # over the cap
    [approval] = worker.sent_to("ai")
    [downgraded] = worker.sent_to("enhance_local")
    assert approval.plan["seller_label"] == "Müller GmbH"
    assert downgraded.seller_label == "Dupont & Fils"
    assert downgraded.to_document()["seller_label"] == "Dupont & Fils"


async def test_a_settlement_counts_once_and_frees_the_rest(worker):
    request = await _request(worker)
    await gate_request(request, worker)
    [approval] = worker.sent_to("ai")
    settlement = _settlement(approval, 0.05)
    await settle_spend(settlement, worker)
    await settle_spend(settlement, worker)  # redelivered: changes nothing
    ledger = worker.state["budget_gate"].ledger(DAY)
    assert (ledger.reserved, ledger.settled) == (0, 50_000)


async def test_settlements_and_cap_changes_reach_the_changelog_before_their_commit(worker):
    # The offset of a settlement may be committed as soon as its handler returns: the
    # table writes must be flushed by then, or a crash leaves the reservation open.
    book = worker.state["budget_gate"]
    flushed: list[tuple] = []

    async def flush():
        ledger = book.ledger(DAY)
        flushed.append((ledger.open, ledger.settled, ledger.cap))

    book.flush = flush
    request = await _request(worker)
    await gate_request(request, worker)
    [approval] = worker.sent_to("ai")
    await settle_spend(_settlement(approval, 0.05), worker)
    await change_day_caps(BudgetCapChanged.new(
        event_id=deterministic_id("caps"), budget_key=DAY, budget_day=DAY,
        daily_cap_usd=0.5, operation_caps_usd={}, reason="more", requested_by="test"), worker)
    assert flushed == [(1, 0, None), (0, 50_000, None), (0, 50_000, 500_000)]


async def test_an_operator_cap_change_applies_to_the_next_request(worker):
    change = BudgetCapChanged.new(
        event_id=deterministic_id("caps"), budget_key=DAY, budget_day=DAY,
        daily_cap_usd=0.0, operation_caps_usd={}, reason="stop", requested_by="test")
    await change_day_caps(change, worker)
    await gate_request(await _request(worker), worker)
    assert worker.sent_to("ai") == [] and len(worker.sent_to("enhance_local")) == 1


async def test_a_day_the_table_lost_is_restored_from_mysql_before_reserving(worker):
    # The broker lost the changelog: the table is empty, MySQL knows $0.07 was spent.
    worker.resources.db.rows = [{"operation": "background", "model_id": REMOVE_BACKGROUND,
                                 "micros": 70_000, "paid": 1}]
    await gate_request(await _request(worker), worker)
    ledger = worker.state["budget_gate"].ledger(DAY)
    assert ledger.reconciled and ledger.settled == 70_000
    assert worker.sent_to("ai") == []  # 0.07 spent + 0.07 asked > 0.10 cap
    [plan] = worker.sent_to("enhance_local")
    assert plan.steps[0]["fallback_reason"].startswith("budget")
    queries = [sql for sql, _ in worker.resources.db.statements if "GROUP BY operation" in sql]
    await gate_request(await _request(worker, "seller-3"), worker)
    assert len([sql for sql, _ in worker.resources.db.statements
                if "GROUP BY operation" in sql]) == len(queries) == 1  # once per ledger


async def test_a_request_settled_in_a_lost_table_is_not_reserved_nor_settled_again(worker):
    # A broker restart lost the table; the request is driven again. MySQL has the day's
    # $0.07 and this request's own $0.07: it must not reserve a second $0.07 (its result
    # is in the AI cache) and its settlement, sent again, must not count twice.
    worker.resources.db.rows = [{"operation": "background", "model_id": REMOVE_BACKGROUND,
                                 "micros": 70_000, "paid": 1}]
    worker.resources.db.one = {"n": 1, "micros": 70_000}
    request = await _request(worker)
    await gate_request(request, worker)
    [approval] = worker.sent_to("ai")
    assert approval.reserved_usd == 0.0  # finished: cached results only
    await settle_spend(_settlement(approval, 0.07), worker)
    ledger = worker.state["budget_gate"].ledger(DAY)
    assert (ledger.reserved, ledger.settled, ledger.open) == (0, 70_000, 0)


async def test_a_request_mysql_does_not_know_is_reserved_as_usual(worker):
    worker.resources.db.one = {"n": 0, "micros": 0}
    await gate_request(await _request(worker), worker)
    [approval] = worker.sent_to("ai")
    assert approval.reserved_usd == pytest.approx(0.07)


async def test_a_settlement_sent_before_the_loss_is_not_counted_again_after_reconciling(worker):
    # The previous life paid $0.07 for request A, wrote ai_usage_logs and sent the
    # settlement; the table was lost. The rebuilt day holds A's $0.07; A's settlement,
    # consumed afterwards (unknown reservation), must not add it a second time.
    worker.resources.db.rows = [{"operation": "background", "model_id": REMOVE_BACKGROUND,
                                 "micros": 70_000, "paid": 1, "request_id": "req-A"}]
    await gate_request(await _request(worker), worker)  # reconciles the day
    early = await _request(worker, "seller-9")
    lost = AISpendSettled.from_document({**_settlement(
        type("A", (), {"request_id": "req-A", "reservation_id": "req-A",
                       "image_id": early.image_id, "job_id": early.job_id,
                       "reserved_usd": 0.07})(), 0.07).to_document()})
    await settle_spend(lost, worker)
    ledger = worker.state["budget_gate"].ledger(DAY)
    assert (ledger.settled, ledger.paid_calls) == (70_000, 1)


def _usage_row(approval, cost):
    return {"step_order": 1, "reservation_id": approval.reservation_id,
            "job_id": approval.job_id, "image_id": approval.image_id,
            "model_id": REMOVE_BACKGROUND, "operation": "background", "budget_day": DAY,
            "cost_usd": cost, "latency_ms": 5, "success": 1, "cache_hit": 0, "attempts": 1,
            "error_message": None}


async def test_a_hold_whose_settlement_was_lost_is_settled_from_ai_usage_logs(worker,
                                                                          monkeypatch):
    from agents.budget_gate import close_recorded_holds, settlement_from_record
    from agents.enhance_ai import settlement_for
    from schemas import validate_event

    first, second = await _request(worker, "seller-1"), await _request(worker, "seller-2")
    worker.state["budget_gate"].caps = Caps.from_usd(1.0, {})
    await gate_request(first, worker)
    await gate_request(second, worker)
    lost, in_flight = worker.sent_to("ai")
    # ai_usage_logs records the first request's settlement (its event was lost); the
    # second has no record yet (its call is in flight): it is left alone.
    records = {lost.request_id: [_usage_row(lost, 0.07)]}

    async def recorded(db, request_id):
        return records.get(request_id, [])

    monkeypatch.setattr("agents.budget_gate.recorded_usage", recorded)
    seen = await close_recorded_holds(worker, set())
    assert seen == {lost.request_id, in_flight.request_id}
    assert worker.sent_to("ai_budget") == []  # open once is not open for long
    await close_recorded_holds(worker, seen)
    [again] = worker.sent_to("ai_budget")
    validate_event(again.schema_name, again.to_document())
    sent = settlement_for(lost, [{"order": 1, "operation": "background",
                                  "model_id": REMOVE_BACKGROUND, "cost_usd": 0.07,
                                  "paid": True, "cache_hit": False, "attempts": 1,
                                  "latency_ms": 5.0, "success": True, "error": None}])
    assert again.event_id == sent.event_id and again.usage == sent.usage
    assert (again.settled_usd, again.reserved_usd, again.outcome) == (0.07, 0.07, "settled")
    await settle_spend(again, worker)
    await settle_spend(sent, worker)  # the lost one turns up after all: changes nothing
    ledger = worker.state["budget_gate"].ledger(DAY)
    assert (ledger.settled, ledger.reserved, ledger.open) == (70_000, 70_000, 1)
    assert set(ledger.holds) == {in_flight.request_id}
    assert settlement_from_record(DAY, lost.request_id, {"background": 70_000},
                                  records[lost.request_id]).outcome == "settled"
