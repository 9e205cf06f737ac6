"""Recording what came of a meeting (``BookingOutcome``) and the booking status that follows from it.

``booking_outcome_record`` is the one write path: staff or a host record ``held`` / ``no_show`` /
``qualified`` / ``won`` (with the deal amount) / ``lost`` once the booking has started. The booking becomes
``no_show`` for a no-show and ``completed`` otherwise; the fairness ledger records the change (a no-show is
credited back unless the pool counts no-shows, and re-counted when corrected). Recording again replaces the
outcome; the replaced one stays in the booking's decision history, and every recording emits
``booking.outcome_recorded`` through the outbox (for CRM or analytics handlers). With ``keep_existing`` (the
admin's bulk actions) an outcome found recorded, looked up under the booking's row lock, is left as it is
(``OutcomeAlreadyRecorded``): a deal recorded as won meanwhile is not replaced by a plain "held".
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone as dj_timezone

from booking import outbox
from booking.errors import (
    BookingNotActive,
    BookingNotFound,
    BookingNotStarted,
    InvalidInput,
    OutcomeAlreadyRecorded,
)
from booking.models import Booking, BookingHost, BookingOutcome
from booking.services import locking
from routing.services import ledger_assigned, ledger_released

Kind = BookingOutcome.Kind
MAX_AMOUNT = Decimal("9999999999.99")  # DecimalField(max_digits=12, decimal_places=2)
NOTE_MAX = 2000


def _iso(dt: datetime) -> str:
    from booking.services.manage import _iso as iso

    return iso(dt)


def _credit_holder(history: list, rep_id: int) -> int:
    from booking.services.manage import _credit_holder as holder  # manage imports this module

    return holder(history, rep_id)


def booking_status_apply(booking: Booking, status: str, *, now: datetime, reason: str = "") -> bool:
    """Set a started booking's ``status`` to ``completed`` or ``no_show`` (the caller holds the row lock,
    inside a transaction) and write the fairness ledger change. Returns whether the status changed.

    Fairness counts are derived from booking statuses (``routing.ledger``); the ledger entries are
    their audit trail: a no-show is ``credited`` back (-1) when the pool does not count no-shows, and a
    no-show corrected to completed is ``assigned`` (+1) again."""
    if status not in (Booking.Status.COMPLETED, Booking.Status.NO_SHOW):
        raise ValueError(f"unsupported status {status!r}")
    if booking.status == status:
        return False
    if booking.status not in (Booking.Status.CONFIRMED, Booking.Status.COMPLETED, Booking.Status.NO_SHOW):
        raise BookingNotActive()
    previous = booking.status
    booking.status = status
    hosts = list(BookingHost.objects.filter(booking=booking, active=True).values_list("rep_id", flat=True))
    locking.lock_reps(hosts)  # the status moves the hosts' fairness tallies (see ``locking.lock_reps``)
    history = (booking.decision or {}).get("history") or []
    holders = [_credit_holder(history, rep_id) for rep_id in hosts]  # a host seated by an override holds none
    if status == Booking.Status.NO_SHOW:
        ledger_released(
            pool=booking.pool, booking_id=booking.pk, rep_ids=holders, status="no_show", reason=reason
        )
    elif previous == Booking.Status.NO_SHOW and not booking.pool.count_no_shows:
        ledger_assigned(
            pool_id=booking.pool_id,
            booking_id=booking.pk,
            rep_ids=holders,
            reason=reason or "no-show corrected to completed",
        )
    return True


def _clean(kind: Any, amount: Any, note: Any) -> tuple[str, Decimal | None, str]:
    errors: dict[str, list[str]] = {}
    if kind not in Kind.values:
        errors["kind"] = [f"Choose one of: {', '.join(Kind.values)}."]
    value: Decimal | None = None
    if amount is not None and amount != "":
        try:
            value = Decimal(str(amount))
        except (InvalidOperation, ValueError):
            errors["amount"] = ["Expected a number."]
        else:
            if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
                errors["amount"] = [f"Expected a number from 0 to {MAX_AMOUNT}."]
            elif value != value.quantize(Decimal("0.01")):
                errors["amount"] = ["At most 2 decimal places."]
            else:
                value = value.quantize(Decimal("0.01"))
    if "kind" not in errors and "amount" not in errors:
        if kind == Kind.WON and value is None:
            errors["amount"] = ["The deal amount is required for a won outcome."]
        elif kind != Kind.WON and value is not None:
            errors["amount"] = ["Only a won outcome has an amount."]
    if not isinstance(note, str):
        errors["note"] = ["Expected text."]
    elif len(note) > NOTE_MAX:
        errors["note"] = [f"At most {NOTE_MAX} characters."]
    if errors:
        raise InvalidInput(errors)
    return kind, value, note


def _describe(outcome: BookingOutcome) -> dict[str, Any]:
    return {
        "kind": outcome.kind,
        "amount": None if outcome.amount is None else str(outcome.amount),
        "note": outcome.note[:300],
        "by": outcome.recorded_by_id,
        "at": _iso(outcome.recorded_at),
    }


def booking_outcome_record(
    *,
    booking: Booking,
    kind: str,
    amount: Decimal | str | int | None = None,
    note: str = "",
    user=None,
    now: datetime | None = None,
    keep_existing: bool = False,
) -> BookingOutcome:
    """Record (or replace) the outcome of ``booking``; see the module docstring.

    Raises ``InvalidInput`` (400: unknown kind, missing/extra/invalid amount, note too long),
    ``BookingNotFound`` (404: the booking is gone), ``BookingNotActive`` (409: cancelled),
    ``BookingNotStarted`` (409: its start has not passed yet) and, with ``keep_existing``,
    ``OutcomeAlreadyRecorded`` (409: an outcome is recorded; nothing changed). The returned outcome carries
    ``replaced`` (the previous kind or ``None``)."""
    now = now or dj_timezone.now()
    kind, value, note = _clean(kind, amount, note)

    def run():
        with locking.change():
            locked = (
                Booking.objects.select_for_update(of=("self",))
                .select_related("pool")
                .filter(pk=booking.pk)
                .first()
            )
            if locked is None:
                raise BookingNotFound()
            if locked.status == Booking.Status.CANCELLED:
                raise BookingNotActive("A cancelled booking has no outcome.")
            if locked.start > now:
                raise BookingNotStarted()
            outcome = BookingOutcome.objects.filter(booking=locked).first()
            if keep_existing and outcome is not None:  # read under the row lock every recording takes
                raise OutcomeAlreadyRecorded(outcome.kind)
            status = Booking.Status.NO_SHOW if kind == Kind.NO_SHOW else Booking.Status.COMPLETED
            booking_status_apply(locked, status, now=now, reason=f"outcome: {kind}")
            previous = _describe(outcome) if outcome is not None else None
            if outcome is None:
                outcome = BookingOutcome(booking=locked)
            outcome.kind, outcome.amount, outcome.note = kind, value, note
            outcome.recorded_by = user if user is not None and getattr(user, "pk", None) else None
            outcome.recorded_at = now
            outcome.save()
            decision = dict(locked.decision or {})
            entry = {"at": _iso(now), "action": "outcome", **_describe(outcome), "status": locked.status}
            if previous is not None:
                entry["replaced"] = previous
            decision["history"] = [*decision.get("history", []), entry]
            locked.decision = decision
            locked.save(update_fields=["status", "decision", "updated_at"])
            outbox.emit(
                "booking.outcome_recorded",
                locked,
                context={
                    "kind": kind,
                    "amount": entry["amount"],
                    "status": locked.status,
                    "previous": previous["kind"] if previous else None,
                },
                now=now,
            )
            return locked, outcome, previous

    locked, outcome, previous = locking.conflicts(run)
    outcome.replaced = previous["kind"] if previous else None
    booking.status = locked.status
    return outcome
