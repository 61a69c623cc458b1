"""The budget ledger: exact micro-dollar sums, caps, idempotent reserve and settle."""

import random
from datetime import UTC, datetime

import pytest

from imaging.errors import ConfigurationError
from streams.budget import (
    Caps,
    DayLedger,
    Decision,
    Reservation,
    budget_day,
    budget_zone,
    day_summary,
    reconcile,
    reserve,
    settle,
    settled_before,
    to_micros,
)

BG, UP = "background", "upscale"


def test_reserve_until_the_cap_then_refuse_with_a_reason():
    day, caps = DayLedger("2026-11-22"), Caps.from_usd(0.20, {})
    decisions = []
    for i in range(4):
        outcome = reserve(day, None, f"r{i}", {BG: to_micros(0.07)}, caps)
        decisions.append(outcome.decision)
    assert decisions == [Decision.RESERVED] * 2 + [Decision.DOES_NOT_FIT] * 2
    assert day.reserved == 140_000 and day.open == 2 and day.downgraded == 2
    refused = reserve(day, None, "r9", {BG: 70_000}, caps)
    assert refused.reason.startswith("budget_exhausted: needs $0.0700, $0.0600 left of $0.20")


def test_a_redelivered_request_never_reserves_twice():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    first = reserve(day, None, "r1", {BG: 70_000}, caps)
    again = reserve(day, first.reservation, "r1", {BG: 70_000}, caps)
    assert again.decision is Decision.ALREADY_RESERVED and day.reserved == 70_000
    settle(day, first.reservation, "r1", {BG: 70_000}, {"m": 70_000}, 1, released=False)
    late = reserve(day, first.reservation, "r1", {BG: 70_000}, caps)
    assert late.decision is Decision.ALREADY_FINISHED
    assert (day.reserved, day.settled, day.reservations) == (0, 70_000, 1)


def test_settle_moves_reserved_to_settled_once():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    held = reserve(day, None, "r1", {BG: 70_000, UP: 30_000}, caps).reservation
    done = settle(day, held, "r1", {BG: 70_000, UP: 0}, {"bg-model": 70_000}, 1, released=False)
    assert done.applied and done.reservation.state == "settled"
    assert (day.reserved, day.settled, day.open, day.paid_calls) == (0, 70_000, 0, 1)
    assert day.reserved_by_operation == {} and day.settled_by_operation == {BG: 70_000}
    duplicate = settle(day, done.reservation, "r1", {BG: 70_000}, {"bg-model": 70_000}, 1,
                       released=False)
    assert not duplicate.applied and day.settled == 70_000


def test_release_frees_the_whole_reservation():
    day, caps = DayLedger("d"), Caps.from_usd(0.07, {})
    held = reserve(day, None, "r1", {BG: 70_000}, caps).reservation
    assert reserve(day, None, "r2", {BG: 70_000}, caps).decision is Decision.DOES_NOT_FIT
    released = settle(day, held, "r1", {}, {}, 0, released=True)
    assert released.reservation.state == "released" and day.committed() == 0
    assert reserve(day, None, "r2", {BG: 70_000}, caps).decision is Decision.RESERVED


def test_unknown_reservation_is_still_counted_and_excess_is_reported():
    day = DayLedger("d")
    counted = settle(day, None, "lost", {BG: 70_000}, {"m": 70_000}, 1, released=False)
    assert counted.applied and day.settled == 70_000 and day.open == 0
    held = reserve(day, None, "r2", {UP: 30_000}, Caps.from_usd(1.0, {})).reservation
    over = settle(day, held, "r2", {UP: 40_000}, {"m": 40_000}, 1, released=False)
    assert over.excess == 10_000


def test_operation_caps_limit_only_their_operation():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {BG: 0.10})
    assert reserve(day, None, "a", {BG: 70_000}, caps).decision is Decision.RESERVED
    refused = reserve(day, None, "b", {BG: 70_000}, caps)
    assert refused.decision is Decision.DOES_NOT_FIT and "background needs" in refused.reason
    assert reserve(day, None, "c", {UP: 30_000}, caps).decision is Decision.RESERVED


def test_random_interleavings_never_exceed_the_cap():
    rng = random.Random(5)
    caps = Caps.from_usd(1.00, {})
    day, open_ = DayLedger("d"), {}
    for i in range(2000):
        if open_ and rng.random() < 0.5:
            rid = rng.choice(sorted(open_))
            held = open_.pop(rid)
            spent = {op: rng.choice([0, v]) for op, v in held.by_operation.items()}
            settle(day, held, rid, spent, {"m": sum(spent.values())}, 1, released=False)
        else:
            amounts = rng.choice([{BG: 70_000}, {UP: 30_000}, {BG: 70_000, UP: 30_000}])
            outcome = reserve(day, None, f"r{i}", amounts, caps)
            if outcome.reservation:
                open_[f"r{i}"] = outcome.reservation
        assert day.settled + day.reserved <= caps.daily
        assert day.reserved == sum(r.amount for r in open_.values())


def test_budget_day_follows_the_time_zone():
    late_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    assert budget_day(late_utc, budget_zone("UTC")) == "2026-11-22"
    assert budget_day(late_utc, budget_zone("Asia/Tokyo")) == "2026-11-23"
    with pytest.raises(ConfigurationError, match="Mars/Base"):
        budget_zone("Mars/Base")


def test_summary_is_in_dollars_and_documents_round_trip():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    reserve(day, None, "r", {BG: 70_000}, caps)
    assert DayLedger.from_document(day.to_document(), "d") == day
    summary = day_summary(day, caps)
    assert summary["reserved_usd"] == 0.07 and summary["remaining_usd"] == 0.93


def test_an_operator_raises_the_day_cap_and_the_next_request_fits():
    from streams.budget import caps_for, change_caps

    defaults = Caps.from_usd(1.00, {"upscale": 0.10})
    day = DayLedger("2026-12-01")
    assert reserve(day, None, "r1", {"background": 900_000}, caps_for(day, defaults)
                   ).decision is Decision.RESERVED
    refused = reserve(day, None, "r2", {"background": 200_000}, caps_for(day, defaults))
    assert refused.decision is Decision.DOES_NOT_FIT and "of $1.00" in refused.reason
    change_caps(day, 2_000_000, {"background": 1_500_000})
    caps = caps_for(day, defaults)
    assert caps == Caps(2_000_000, {"upscale": 100_000, "background": 1_500_000})
    assert reserve(day, None, "r2", {"background": 200_000}, caps).decision is Decision.RESERVED
    over = reserve(day, None, "r3", {"background": 500_000}, caps)  # its own cap: 1.50
    assert over.decision is Decision.DOES_NOT_FIT and "background" in over.reason
    # The table document carries the caps (restarts and rebalances keep them).
    again = DayLedger.from_document(day.to_document(), day.day)
    assert caps_for(again, defaults) == caps


def test_lowering_a_cap_stops_new_reservations_and_undoes_nothing():
    from streams.budget import caps_for, change_caps

    day = DayLedger("2026-12-01")
    reserve(day, None, "r1", {"background": 700_000}, Caps(1_000_000))
    change_caps(day, 500_000, {})
    assert reserve(day, None, "r2", {"upscale": 30_000}, caps_for(day, Caps(1_000_000))
                   ).decision is Decision.DOES_NOT_FIT
    assert day.reserved == 700_000
    with pytest.raises(ValueError):
        change_caps(day, -1, {})


def test_ledgers_stored_before_run_time_caps_still_load():
    from streams.budget import caps_for

    old = {"day": "2026-11-30", "reserved": 0, "settled": 5, "reserved_by_operation": {},
           "settled_by_operation": {}, "settled_by_model": {}, "reservations": 1, "open": 0,
           "downgraded": 0, "paid_calls": 1}
    assert caps_for(DayLedger.from_document(old, "2026-11-30"), Caps(7)) == Caps(7)


def test_reconcile_takes_the_larger_record_and_never_adds_twice():
    from streams.budget import DayLedger, reconcile

    day = DayLedger(day="2026-12-05", settled=30_000,
                    settled_by_operation={"background": 30_000},
                    settled_by_model={"m1": 30_000}, paid_calls=1)
    merged = reconcile(day, {"background": 70_000, "upscale": 10_000},
                       {"m1": 70_000, "m2": 10_000}, 3)
    assert merged.settled == 80_000 and merged.paid_calls == 3 and merged.reconciled
    assert merged.settled_by_operation == {"background": 70_000, "upscale": 10_000}
    again = reconcile(merged, {"background": 70_000}, {"m1": 70_000}, 1)
    assert again.settled == 80_000  # the same spend is not counted twice


def test_a_request_settled_in_a_lost_table_is_finished_not_reserved_or_counted_again():
    # The table was rebuilt after a broker loss: reconciled with MySQL's $0.07, which is
    # this very request's. Driven again, it finds itself finished; its settlement, sent
    # again from the AI cache's receipt, changes nothing.
    day = reconcile(DayLedger("2026-11-22"), {BG: 70_000}, {"m": 70_000}, 1)
    done = settled_before("r1", day.day, 70_000)
    outcome = reserve(day, done, "r1", {BG: 70_000}, Caps.from_usd(0.10, {}))
    assert outcome.decision is Decision.ALREADY_FINISHED and day.reserved == 0
    again = settle(day, done, "r1", {BG: 70_000}, {"m": 70_000}, 1, released=False)
    assert not again.applied and (day.settled, day.paid_calls) == (70_000, 1)


# The day ledger and the reservation are two table records, written reservation first.
# A crash can land the first without the second; the redelivered message finishes it.

def _lost(day: DayLedger) -> DayLedger:
    """The day as its changelog last recorded it (the write in flight was lost)."""
    return DayLedger.from_document(day.to_document(), day.day)


def test_a_request_whose_day_write_was_lost_is_held_again_once():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    before = _lost(day)
    first = reserve(day, None, "r1", {BG: 70_000}, caps)  # only the reservation landed
    again = reserve(before, first.reservation, "r1", {BG: 70_000}, caps)
    assert again.decision is Decision.RESERVED
    assert (before.reserved, before.open, before.reservations) == (70_000, 1, 1)
    assert reserve(before, again.reservation, "r1", {BG: 70_000}, caps).decision is (
        Decision.ALREADY_RESERVED)
    assert before.reserved == 70_000 and before.holds == {"r1": {BG: 70_000}}


def test_a_request_whose_reservation_write_was_lost_is_not_held_twice():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    reserve(day, None, "r1", {BG: 70_000}, caps)  # only the day landed
    again = reserve(day, None, "r1", {BG: 70_000}, caps)
    assert again.decision is Decision.RESERVED and again.reservation.amount == 70_000
    assert (day.reserved, day.open, day.reservations) == (70_000, 1, 1)


def test_a_settlement_whose_day_write_was_lost_is_applied_once_when_redelivered():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    held = reserve(day, None, "r1", {BG: 70_000}, caps).reservation
    before = _lost(day)
    done = settle(day, held, "r1", {BG: 60_000}, {"m": 60_000}, 1, released=False)
    # The reservation landed as settled; the day still holds it.
    redelivered = settle(before, done.reservation, "r1", {BG: 60_000}, {"m": 60_000}, 1,
                         released=False)
    assert redelivered.applied
    assert (before.reserved, before.settled, before.open, before.paid_calls) == (0, 60_000, 0, 1)
    assert before.reserved_by_operation == {} and before.holds == {}
    assert not settle(before, redelivered.reservation, "r1", {BG: 60_000}, {"m": 60_000}, 1,
                      released=False).applied
    assert day_summary(before, caps)["open_reservation_ids"] == []


def test_a_settlement_whose_reservation_record_was_lost_frees_the_days_hold():
    day, caps = DayLedger("d"), Caps.from_usd(1.0, {})
    reserve(day, None, "r1", {BG: 70_000, UP: 30_000}, caps)
    done = settle(day, None, "r1", {BG: 70_000}, {"m": 70_000}, 1, released=False)
    assert done.applied and done.reservation.amount == 100_000
    assert (day.reserved, day.settled, day.open) == (0, 70_000, 0)


def test_random_crashes_between_the_two_writes_leave_nothing_open_or_counted_twice():
    rng = random.Random(11)
    caps = Caps.from_usd(100.0, {})
    stored_day = DayLedger("d")
    stored: dict[str, object] = {}  # the reservations table as its changelog holds it
    spent_once = 0
    for i in range(300):
        rid, amount = f"r{i}", {BG: 70_000}
        cost = rng.choice([0, 70_000])
        # Each message is delivered until both of its writes landed; a crash lands the
        # reservation write alone (written first), or nothing.
        for message in ("request", "settlement"):
            while True:
                day = DayLedger.from_document(stored_day.to_document(), "d")
                existing = stored.get(rid)
                if message == "request":
                    outcome = reserve(day, existing, rid, amount, caps)
                    reservation = outcome.reservation
                else:
                    outcome = settle(day, existing, rid, {BG: cost} if cost else {},
                                     {"m": cost} if cost else {}, int(cost > 0),
                                     released=cost == 0)
                    reservation = outcome.reservation
                crash = rng.choice(["none", "before_both", "between"])
                if crash == "before_both":
                    continue
                stored[rid] = Reservation.from_document(reservation.to_document())
                if crash == "between":
                    continue
                stored_day = day
                break
        spent_once += cost
    assert (stored_day.open, stored_day.reserved, stored_day.holds) == (0, 0, {})
    assert stored_day.settled == spent_once and stored_day.reservations == 300


def test_a_ledger_stored_before_holds_still_settles_its_open_reservations():
    held = reserve(DayLedger("d"), None, "r1", {BG: 70_000}, Caps.from_usd(1.0, {})).reservation
    old = {"day": "d", "reserved": 70_000, "settled": 0, "reserved_by_operation": {BG: 70_000},
           "settled_by_operation": {}, "settled_by_model": {}, "reservations": 1, "open": 1,
           "downgraded": 0, "paid_calls": 0}
    day = DayLedger.from_document(old, "d")
    assert day.holds is None
    assert settle(day, held, "r1", {BG: 70_000}, {"m": 70_000}, 1, released=False).applied
    assert (day.reserved, day.settled, day.open) == (0, 70_000, 0)
    assert day_summary(day, Caps(1))["open_reservation_ids"] is None
