"""budget_gate: AI requests reserve money in the day's budget before any call is made.

images.ai.requests -> images.ai (approved) or images.enhance.local (did not fit: AI steps
downgraded, reason ``budget_exhausted``); images.ai.budget (settlements) and
images.ai.caps (operators' cap changes, ``PUT /api/budget/caps``) -> the tables.

Requests and settlements are keyed by the budget day, and the two tables below live on
the same partitions, so one worker owns a day's spend and decides alone. The decisions
are ``streams.budget`` (pure, integer micro-dollars). A redelivered request is found by
its id and never reserves twice; a second settlement of a reservation changes nothing.
Table changes are flushed to their changelog before the approval is sent (and before a
settlement's or a cap change's offset can be committed): a crash may lose an approval
(the request comes back and is approved again with the same ids) but never a reservation
that enhance_ai could act on, nor a settlement. The day ledger keeps its open
reservations by id, so a crash between the two table writes is finished by the
redelivered message, not left as an open reservation. A request redelivered after its
reservation was settled is approved with nothing reserved: it completes again from the
cache, and no new call can be paid outside a reservation.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from imaging.errors import RetryableError
from imaging.planning import downgrade_ai_steps
from services.usage_records import (
    recorded_usage,
    settled_request,
    settled_requests,
    settled_spend,
)
from streams.app import Worker
from streams.budget import (
    Caps,
    DayLedger,
    Decision,
    Reservation,
    caps_for,
    change_caps,
    day_summary,
    reconcile,
    reserve,
    settle,
    settled_before,
    to_micros,
    to_usd,
)
from streams.metrics import BUDGET_DECISIONS, BUDGET_EXCESS
from streams.processing import SINK_RETRY, Stage
from streams.records import (
    AIEnhancementApproved,
    AIEnhancementRequested,
    AISpendSettled,
    BudgetCapChanged,
    EnhancementPlan,
    deterministic_id,
)
from streams.trust import approval_id

log = logging.getLogger(__name__)

STAGE = "budget_gate"


@dataclass
class BudgetBook:
    """The budget tables of this worker's budget days, and the configured caps.

    Values are JSON documents (streams.budget dataclasses). Keys are raw bytes, as on the
    topics, so a day's key hashes to the partition its messages are on (owner lookup).
    ``flush`` writes table changes to their changelog before an approval is sent.
    """

    days: MutableMapping[bytes, Any]
    reservations: MutableMapping[bytes, Any]
    caps: Caps
    flush: Callable[[], Awaitable[None]]

    def ledger(self, day: str) -> DayLedger:
        return DayLedger.from_document(self.days.get(day.encode()), day)


def book_of(worker: Worker) -> BudgetBook:
    return worker.state[STAGE]


def ai_amounts(steps: list[dict[str, Any]]) -> dict[str, int]:
    """Micro-dollars to reserve per operation: the AI steps' catalog prices."""
    amounts: dict[str, int] = {}
    for step in steps:
        if step["method"] == "ai":
            amounts[step["operation"]] = (amounts.get(step["operation"], 0)
                                          + to_micros(step["estimated_cost_usd"]))
    return amounts


def approval_for(request: AIEnhancementRequested, reservation: Reservation, signing_key: str,
                 finished: bool = False) -> AIEnhancementApproved:
    """The approval to spend a reservation; once it is finished, an approval of nothing:
    a redelivered request then completes again from cached results, paying nothing. Its
    id is a MAC of what it approves (streams/trust.py): only this stage can mint one."""
    reserved = 0.0 if finished else to_usd(reservation.amount)
    return AIEnhancementApproved.new(
        event_id=approval_id(signing_key, request_id=request.request_id,
                             reservation_id=reservation.id, budget_day=request.budget_day,
                             reserved_usd=reserved, plan=request.plan,
                             finished=reserved == 0.0),
        request_id=request.request_id,
        reservation_id=reservation.id,
        image_id=request.image_id,
        job_id=request.job_id,
        budget_key=request.budget_key,
        budget_day=request.budget_day,
        reserved_usd=reserved,
        plan=request.plan,
    )


def downgraded_plan(request: AIEnhancementRequested, reason: str) -> EnhancementPlan:
    plan = EnhancementPlan.from_document(request.plan)
    plan.steps = downgrade_ai_steps(plan.steps, reason)
    plan.estimated_cost_usd = 0.0
    return plan


async def reconcile_day(day: str, worker: Worker) -> None:
    """Fold MySQL's record of the day's spend into a ledger that has not seen it (a day
    new to this table, or a changelog the broker lost): spend never restarts at zero."""
    book = book_of(worker)
    if book.ledger(day).reconciled:
        return
    durable = await settled_spend(worker.resources.db, day)
    requests = await settled_requests(worker.resources.db, day)
    ledger = book.ledger(day)  # read again: the settle agent may have written meanwhile
    if not ledger.reconciled:
        before = ledger.settled
        ledger = reconcile(ledger, durable.by_operation, durable.by_model, durable.paid_calls)
        book.days[day.encode()] = ledger.to_document()
        # The requests behind that money are finished: a settlement of one of them still
        # on its way (sent before the loss) or sent again must not count it twice.
        for request_id, micros in requests.items():
            if book.reservations.get(request_id.encode()) is None:
                book.reservations[request_id.encode()] = settled_before(
                    request_id, day, micros).to_document()
        if ledger.settled > before:
            log.warning("%s: day %s restored from ai_usage_logs: settled $%.4f, the table "
                        "held $%.4f", STAGE, day, to_usd(ledger.settled), to_usd(before))


async def gate_request(request: AIEnhancementRequested, worker: Worker) -> None:
    await reconcile_day(request.budget_day, worker)
    book = book_of(worker)
    if book.reservations.get(request.request_id.encode()) is None:
        # Settled in a table the broker lost (re-driven after a broker loss)? Its money is
        # in the reconciled day: it must not be reserved and settled again.
        durable = await settled_request(worker.resources.db, request.request_id)
        if durable is not None and book.reservations.get(request.request_id.encode()) is None:
            book.reservations[request.request_id.encode()] = settled_before(
                request.request_id, request.budget_day, durable).to_document()
    # Read, decide and write without an await in between: the settle agent shares the
    # tables on this event loop.
    stored = book.reservations.get(request.request_id.encode())
    ledger = book.ledger(request.budget_day)
    outcome = reserve(ledger, Reservation.from_document(stored) if stored else None,
                      request.request_id, ai_amounts(request.plan["steps"]),
                      caps_for(ledger, book.caps))
    BUDGET_DECISIONS.labels(outcome.decision.value).inc()
    if outcome.decision is Decision.RESERVED:
        assert outcome.reservation is not None
        book.reservations[request.request_id.encode()] = outcome.reservation.to_document()
        book.days[request.budget_day.encode()] = outcome.day.to_document()
        await book.flush()
    if outcome.decision in (Decision.RESERVED, Decision.ALREADY_RESERVED):
        assert outcome.reservation is not None
        await worker.send("ai", approval_for(request, outcome.reservation,
                                             worker.settings.signing_key))
    elif outcome.decision is Decision.DOES_NOT_FIT:
        book.days[request.budget_day.encode()] = outcome.day.to_document()
        assert outcome.reason is not None
        await worker.send("enhance_local", downgraded_plan(request, outcome.reason))
    else:
        assert outcome.reservation is not None
        log.info("%s: request %s was settled already; approving cached results only",
                 STAGE, request.request_id)
        await worker.send("ai", approval_for(request, outcome.reservation,
                                             worker.settings.signing_key, finished=True))


async def settle_spend(settlement: AISpendSettled, worker: Worker) -> None:
    book = book_of(worker)
    by_operation: dict[str, int] = {}
    by_model: dict[str, int] = {}
    for use in settlement.usage:
        micros = to_micros(use["cost_usd"])
        by_operation[use["operation"]] = by_operation.get(use["operation"], 0) + micros
        by_model[use["model_id"]] = by_model.get(use["model_id"], 0) + micros
    paid_calls = sum(1 for use in settlement.usage if use["cost_usd"] > 0)
    stored = book.reservations.get(settlement.reservation_id.encode())
    outcome = settle(book.ledger(settlement.budget_day),
                     Reservation.from_document(stored) if stored else None,
                     settlement.reservation_id, by_operation, by_model, paid_calls,
                     released=settlement.outcome == "released")
    if not outcome.applied:
        BUDGET_DECISIONS.labels("duplicate_settlement").inc()
        return
    # The reservation first: if only it lands, the redelivered settlement finds the day
    # still holding it and applies the rest (streams.budget.settle).
    book.reservations[settlement.reservation_id.encode()] = outcome.reservation.to_document()
    book.days[settlement.budget_day.encode()] = outcome.day.to_document()
    # On the changelog before this settlement's offset can be committed: a commit that
    # overtook the table writes, then a crash, would leave the reservation open for good.
    await book.flush()
    BUDGET_DECISIONS.labels(settlement.outcome).inc()
    if stored is None:
        log.warning("%s: settlement for unknown reservation %s counted ($%.4f)", STAGE,
                    settlement.reservation_id, to_usd(sum(by_operation.values())))
    if outcome.excess:
        BUDGET_EXCESS.inc(to_usd(outcome.excess))
        log.error("%s: reservation %s settled $%.4f above its estimate", STAGE,
                  settlement.reservation_id, to_usd(outcome.excess))


async def change_day_caps(change: BudgetCapChanged, worker: Worker) -> None:
    """Record an operator's caps for a day (idempotent: setting them twice is the same)."""
    book = book_of(worker)
    ledger = change_caps(book.ledger(change.budget_day), to_micros(change.daily_cap_usd),
                         {op: to_micros(v) for op, v in change.operation_caps_usd.items()})
    book.days[change.budget_day.encode()] = ledger.to_document()
    await book.flush()  # an operator's lowered cap must not be lost to a crash
    BUDGET_DECISIONS.labels("caps_changed").inc()
    log.warning("%s: caps of %s set to $%.2f a day%s by %s (%s)", STAGE, change.budget_day,
                change.daily_cap_usd,
                "".join(f", {op} ${v:.2f}" for op, v in change.operation_caps_usd.items()),
                change.requested_by, change.reason or "no reason given")


def settlement_from_record(day: str, request_id: str, held: Mapping[str, int],
                           rows: list[dict[str, Any]]) -> AISpendSettled:
    """The settlement of a request as ai_usage_logs recorded it (the first settlement,
    which enhance_ai writes there before sending it): the same event id and amounts as
    the one sent, so whichever arrives second changes nothing."""
    usage = [{"order": int(row["step_order"]), "operation": row["operation"],
              "model_id": row["model_id"], "cost_usd": float(row["cost_usd"]),
              "paid": float(row["cost_usd"]) > 0, "cache_hit": bool(row["cache_hit"]),
              "attempts": int(row["attempts"]), "latency_ms": float(row["latency_ms"] or 0),
              "success": bool(row["success"]), "error": row["error_message"]}
             for row in rows]
    spent = sum(to_micros(u["cost_usd"]) for u in usage)
    return AISpendSettled.new(
        event_id=deterministic_id("AISpendSettled", request_id),
        request_id=request_id, reservation_id=request_id, image_id=rows[0]["image_id"],
        job_id=rows[0]["job_id"], budget_key=day, budget_day=day,
        reserved_usd=to_usd(sum(held.values())), settled_usd=to_usd(spent),
        outcome="settled" if spent else "released", usage=usage)


async def close_recorded_holds(worker: Worker, seen: set[str]) -> set[str]:
    """Send again, from ai_usage_logs, the settlement of each hold that was open at the
    last check too and whose spend is recorded there: its settlement event was lost
    (nothing known loses one; this is the net under what is not known). Returns the
    holds open now. Holds without a record (a call in flight or waiting out an outage)
    are left alone."""
    book = book_of(worker)
    open_now: set[str] = set()
    for key, document in list(book.days.items()):
        ledger = DayLedger.from_document(document, key.decode())
        for request_id, held in sorted((ledger.holds or {}).items()):
            open_now.add(request_id)
            if request_id not in seen:
                continue
            rows = await recorded_usage(worker.resources.db, request_id)
            if not rows:
                continue
            log.warning("%s: reservation %s of %s still open although ai_usage_logs records"
                        " its settlement; settling it from that record", STAGE, request_id,
                        ledger.day)
            BUDGET_DECISIONS.labels("settled_from_record").inc()
            await worker.send("ai_budget", settlement_from_record(ledger.day, request_id,
                                                                  held, rows))
    return open_now


def costs_summary(day: str, book: BudgetBook) -> dict[str, Any]:
    """What this worker's copy of the tables says about ``day`` (see streams.web)."""
    ledger = book.ledger(day)
    return day_summary(ledger, caps_for(ledger, book.caps))


def register(worker: Worker) -> None:
    app, settings, topics = worker.app, worker.settings, worker.topics
    worker.state[STAGE] = BudgetBook(
        days=app.Table(
            "budget-days", default=None, partitions=settings.topic_partitions,
            key_type=bytes,
            help="Per budget day: reserved and settled micro-dollars, by operation and "
                 "model."),
        reservations=app.Table(
            "budget-reservations", default=None, partitions=settings.topic_partitions,
            key_type=bytes,
            help="Per AI request: its reservation and whether it was settled or released."),
        caps=Caps.from_usd(settings.budget_daily_cap_usd, settings.budget_operation_caps_usd),
        flush=lambda: app.producer.flush(),
    )
    # A request waits out a database outage (the day's first one reads MySQL) rather
    # than being dead-lettered: SINK_RETRY retries until it works.
    gate_stage = Stage(STAGE, AIEnhancementRequested, partial(gate_request, worker=worker),
                       topics.dead_letter, SINK_RETRY)
    settle_stage = Stage("budget_settle", AISpendSettled,
                         partial(settle_spend, worker=worker), topics.dead_letter)
    caps_stage = Stage("budget_caps", BudgetCapChanged,
                       partial(change_day_caps, worker=worker), topics.dead_letter)

    seen: set[str] = set()

    @app.timer(settings.budget_hold_check_seconds)
    async def check_open_holds() -> None:
        nonlocal seen
        if not worker.resources.is_ready:
            return
        try:
            seen = await close_recorded_holds(worker, seen)
        except RetryableError as exc:  # an outage: the next tick tries again
            log.warning("%s: open holds not checked: %s", STAGE, exc)
        except Exception:  # a safety net must never stop the worker
            log.exception("%s: open holds not checked", STAGE)

    worker.run_stage(topics.ai_requests, gate_stage)
    # Settling and caps need neither the database nor the store: never held up by them.
    worker.run_stage(topics.ai_budget, settle_stage, needs_resources=False)
    worker.run_stage(topics.ai_caps, caps_stage, needs_resources=False)
