"""The daily AI budget ledger (pure): reserve before a call, settle after, release on failure.

The budget_gate agent keeps one :class:`DayLedger` per budget day and one
:class:`Reservation` per AI request in faust tables; this module decides. Amounts are
integer micro-dollars, so sums are exact and "settled + reserved <= cap" is a plain
integer comparison, never a rounding question.

Invariant kept by :func:`reserve` and :func:`settle`: for every day,
``settled + reserved <= cap`` as long as a settlement never exceeds its reservation,
which :func:`settle` enforces by clamping (the excess is reported, not hidden).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from imaging.errors import ConfigurationError

MICROS_PER_USD = 1_000_000


def to_micros(usd: float) -> int:
    return round(usd * MICROS_PER_USD)


def to_usd(micros: int) -> float:
    return micros / MICROS_PER_USD


def budget_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"budget_timezone {name!r} is not a known time zone") from None


def budget_day(now: datetime, zone: ZoneInfo) -> str:
    """The calendar day (``YYYY-MM-DD``) that ``now`` falls on in the budget's time zone."""
    return now.astimezone(zone).date().isoformat()


@dataclass(frozen=True)
class Caps:
    """A day's limits in micro-dollars; ``by_operation`` limits only the operations named."""

    daily: int
    by_operation: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_usd(cls, daily: float, by_operation: Mapping[str, float]) -> Caps:
        return cls(to_micros(daily), {op: to_micros(v) for op, v in by_operation.items()})


def _add(totals: dict[str, int], amounts: Mapping[str, int], sign: int = 1) -> None:
    for name, micros in amounts.items():
        totals[name] = totals.get(name, 0) + sign * micros
        if totals[name] == 0:
            del totals[name]


@dataclass
class DayLedger:
    """One budget day: what is reserved (in flight) and settled (spent), and by what."""

    day: str
    reserved: int = 0
    settled: int = 0
    reserved_by_operation: dict[str, int] = field(default_factory=dict)
    settled_by_operation: dict[str, int] = field(default_factory=dict)
    settled_by_model: dict[str, int] = field(default_factory=dict)
    reservations: int = 0   # reservations made
    open: int = 0           # reservations not settled or released yet
    downgraded: int = 0     # requests that did not fit and went to the local fallback
    paid_calls: int = 0     # billable model calls settled
    # Caps an operator set for this day at run time (None / absent: the settings' caps).
    cap: int | None = None
    operation_caps: dict[str, int] = field(default_factory=dict)
    # Whether the durable record (MySQL) was folded in since this ledger was (re)created.
    reconciled: bool = False
    # The open reservations this ledger holds, by id (micro-dollars per operation): the
    # day and the reservation are two table records, and a crash can land one without
    # the other; keyed holds let a redelivered request or settlement finish the other
    # half exactly once. None: a ledger stored before holds were kept (counts only).
    holds: dict[str, dict[str, int]] | None = field(default_factory=dict)

    def committed(self) -> int:
        return self.reserved + self.settled

    def committed_for(self, operation: str) -> int:
        return (self.reserved_by_operation.get(operation, 0)
                + self.settled_by_operation.get(operation, 0))

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None, day: str) -> DayLedger:
        if not document:
            return cls(day=day)
        if "holds" not in document and document.get("open"):
            return cls(**document, holds=None)  # open reservations of unknown ids
        return cls(**document)

    def hold(self, reservation_id: str, by_operation: Mapping[str, int]) -> None:
        """Hold a reservation's money (once per id)."""
        if self.holds is not None:
            if reservation_id in self.holds:
                return
            self.holds[reservation_id] = dict(by_operation)
        self.reserved += sum(by_operation.values())
        _add(self.reserved_by_operation, by_operation)
        self.open += 1

    def unhold(self, reservation_id: str, by_operation: Mapping[str, int]) -> None:
        """Free a reservation's hold; ``by_operation`` counts only for a ledger without
        holds (its own record of the amounts wins otherwise)."""
        if self.holds is not None:
            if reservation_id not in self.holds:
                return
            by_operation = self.holds.pop(reservation_id)
        self.reserved -= sum(by_operation.values())
        _add(self.reserved_by_operation, by_operation, -1)
        self.open -= 1

    def holds_open(self, reservation_id: str) -> bool:
        return self.holds is not None and reservation_id in self.holds

    def held_reservation(self, reservation_id: str) -> Reservation:
        """The open reservation this ledger holds under ``reservation_id`` (its record
        in the reservations table was lost)."""
        assert self.holds is not None
        amounts = self.holds[reservation_id]
        return Reservation(reservation_id, self.day, sum(amounts.values()), dict(amounts))


def caps_for(day: DayLedger, defaults: Caps) -> Caps:
    """The day's caps: the settings' ones, overridden by what an operator set for it."""
    return Caps(defaults.daily if day.cap is None else day.cap,
                {**defaults.by_operation, **day.operation_caps})


def change_caps(day: DayLedger, daily: int, by_operation: Mapping[str, int]) -> DayLedger:
    """Set the day's caps (``by_operation`` adds to or replaces the per-operation ones).

    Raising takes effect for the next request. Lowering below what is already committed
    stops new reservations; money already reserved or spent stays as it is.
    """
    if daily < 0 or any(v < 0 for v in by_operation.values()):
        raise ValueError("caps must be >= 0")
    day.cap = daily
    day.operation_caps = {**day.operation_caps, **by_operation}
    return day


def reconcile(day: DayLedger, settled_by_operation: Mapping[str, int],
              settled_by_model: Mapping[str, int], paid_calls: int) -> DayLedger:
    """Fold the durable record of the day's spend into ``day``.

    The ledger lives in a changelog topic; when the broker loses it, the day would start
    again at zero while the money is spent. Settled spend can only be higher than what
    either record holds, so each amount becomes the larger of the two (never counted
    twice: both records hold the same settlements).
    """
    by_operation = {op: max(day.settled_by_operation.get(op, 0), settled_by_operation.get(op, 0))
                    for op in {*day.settled_by_operation, *settled_by_operation}}
    by_model = {m: max(day.settled_by_model.get(m, 0), settled_by_model.get(m, 0))
                for m in {*day.settled_by_model, *settled_by_model}}
    day.settled = max(day.settled, sum(by_operation.values()))
    day.settled_by_operation = by_operation
    day.settled_by_model = by_model
    day.paid_calls = max(day.paid_calls, paid_calls)
    day.reconciled = True
    return day


@dataclass
class Reservation:
    """One AI request's hold on a day's budget. ``state``: reserved, settled or released."""

    id: str
    day: str
    amount: int
    by_operation: dict[str, int]
    state: str = "reserved"
    settled: int = 0

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Reservation:
        return cls(**document)


def settled_before(reservation_id: str, day: str, micros: int) -> Reservation:
    """The reservation of a request that ai_usage_logs shows settled although this table
    does not know it (the table was rebuilt after a broker lost its changelog). Its money
    is in the day already (``reconcile``): a redelivered request then finds it finished
    and is not reserved, nor settled, a second time."""
    return Reservation(reservation_id, day, micros, {}, state="settled", settled=micros)


class Decision(StrEnum):
    RESERVED = "reserved"
    ALREADY_RESERVED = "already_reserved"    # redelivered while open: approve again
    ALREADY_FINISHED = "already_finished"    # redelivered after settlement: nothing to do
    DOES_NOT_FIT = "does_not_fit"


@dataclass(frozen=True)
class ReserveOutcome:
    decision: Decision
    day: DayLedger
    reservation: Reservation | None
    reason: str | None = None


def reserve(day: DayLedger, existing: Reservation | None, reservation_id: str,
            by_operation: Mapping[str, int], caps: Caps) -> ReserveOutcome:
    """Hold ``by_operation`` (micro-dollars per operation) if it fits the day's caps.

    A reservation recorded while the day's record of it was lost (a crash between the two
    table writes, before anything was approved) is held again, as a new one would be.
    """
    if existing is not None:
        if existing.state != "reserved":
            return ReserveOutcome(Decision.ALREADY_FINISHED, day, existing)
        if day.holds is None or existing.id in day.holds:
            return ReserveOutcome(Decision.ALREADY_RESERVED, day, existing)
    elif day.holds_open(reservation_id):
        # The day holds it and only the reservation record was lost: recreate that.
        return ReserveOutcome(Decision.RESERVED, day, day.held_reservation(reservation_id))
    amount = sum(by_operation.values())
    remaining = caps.daily - day.committed()
    reason = None
    if amount > remaining:
        reason = (f"budget_exhausted: needs ${to_usd(amount):.4f}, ${to_usd(max(remaining, 0)):.4f}"
                  f" left of ${to_usd(caps.daily):.2f} on {day.day}")
    else:
        for operation, micros in sorted(by_operation.items()):
            cap = caps.by_operation.get(operation)
            if cap is not None and day.committed_for(operation) + micros > cap:
                left = max(cap - day.committed_for(operation), 0)
                reason = (f"budget_exhausted: {operation} needs ${to_usd(micros):.4f}, "
                          f"${to_usd(left):.4f} left of its ${to_usd(cap):.2f} cap on {day.day}")
                break
    if reason is not None:
        day.downgraded += 1
        return ReserveOutcome(Decision.DOES_NOT_FIT, day, None, reason)
    reservation = Reservation(reservation_id, day.day, amount, dict(by_operation))
    day.hold(reservation_id, by_operation)
    day.reservations += 1
    return ReserveOutcome(Decision.RESERVED, day, reservation)


@dataclass(frozen=True)
class SettleOutcome:
    applied: bool          # False: a duplicate settlement, nothing changed
    day: DayLedger
    reservation: Reservation
    excess: int = 0        # actual cost above the reservation (clamped, reported)


def settle(day: DayLedger, reservation: Reservation | None, reservation_id: str,
           by_operation: Mapping[str, int], by_model: Mapping[str, int], paid_calls: int,
           released: bool) -> SettleOutcome:
    """Replace a reservation by what was really spent; a second settlement is ignored.

    A settlement for a reservation the table does not know (it can only come from state
    lost outside the changelog) is still counted: money that was spent is never dropped.
    A reservation recorded as settled while the day still holds it (a crash between the
    two table writes) has its day half applied by the redelivered settlement.
    """
    held = day.holds_open(reservation_id)
    if reservation is not None and reservation.state != "reserved" and not held:
        return SettleOutcome(False, day, reservation)
    actual = sum(by_operation.values())
    if reservation is None and held:
        reservation = day.held_reservation(reservation_id)
    if reservation is None:
        reservation = Reservation(reservation_id, day.day, actual, dict(by_operation))
        excess = 0
    else:
        excess = max(actual - reservation.amount, 0)
        day.unhold(reservation_id, reservation.by_operation)
    day.settled += actual
    _add(day.settled_by_operation, by_operation)
    _add(day.settled_by_model, by_model)
    day.paid_calls += paid_calls
    reservation.state = "released" if released and actual == 0 else "settled"
    reservation.settled = actual
    return SettleOutcome(True, day, reservation, excess)


def day_summary(day: DayLedger, caps: Caps) -> dict[str, Any]:
    """The day in dollars, for /api/stats/costs and the gauges."""
    return {
        "day": day.day,
        "cap_usd": to_usd(caps.daily),
        "operation_caps_usd": {op: to_usd(v) for op, v in caps.by_operation.items()},
        "reserved_usd": to_usd(day.reserved),
        "settled_usd": to_usd(day.settled),
        "remaining_usd": to_usd(max(caps.daily - day.committed(), 0)),
        "reserved_by_operation_usd": {k: to_usd(v) for k, v in day.reserved_by_operation.items()},
        "settled_by_operation_usd": {k: to_usd(v) for k, v in day.settled_by_operation.items()},
        "settled_by_model_usd": {k: to_usd(v) for k, v in day.settled_by_model.items()},
        "reservations": day.reservations,
        "open_reservations": day.open,
        # Which requests hold money (the first 50), so a hanging one can be looked up.
        "open_reservation_ids": sorted(day.holds)[:50] if day.holds is not None else None,
        "downgraded_requests": day.downgraded,
        "paid_calls": day.paid_calls,
    }


def today(zone: ZoneInfo) -> str:
    return budget_day(datetime.now(zone), zone)

