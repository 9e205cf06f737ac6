"""Routing a lead by hand (supervisor override): an admin gives a lead to a rep with a reason code.

* The rep must be an active member (member and rep active) of the lead's pool (else the meeting type's).
* A lead with a confirmed booking: the booking is reassigned to the rep (``booking_reassign``, same code
  and note; a past booking is refused with ``BookingInPast``); the booking's ledger entries follow the code.
  A caller who may not change bookings (``may_move_booking=False``: the lead admin for a user without the
  bookings' change permission) is refused such a lead. A lead booked (with its route token) while it is
  routed by hand is refused, nothing written: "route it again" sees the booking and moves it.
* A lead without one (or whose booking is cancelled/held): a counting code charges the rep one assignment
  in the pool's fairness ledger (an ``assigned`` +1 entry without a booking, like an instant route; it
  counts in the current fairness period only, as a booking would), and the rep who held the lead's credit
  loses it: the charge of the lead's instant route or of its latest counting hand-routing, while no booking
  has taken it over, is taken back (``routing.services.ledger_taken_back``). Before, a lead routed by hand
  twice, or routed instantly and then by hand, counted for two reps. ``account_owner`` writes nothing: the
  rep who held the credit keeps it (a later counting code takes it from them).
* Either way the lead's decision gets a ``manual`` entry (the latest) and a ``history`` item: rep, code,
  note, whether it counted, who, when, and the booking it moved.
* The prospect may still hold the route token issued before (``leads.tokens``): a booking made with it
  afterwards goes to the hand-picked rep only (their times are offered), and the charge above goes with
  that booking (its ledger entry is linked to it, so the lead counts once, as the booking).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone as dj_timezone

from booking.errors import BookingError, InvalidInput
from booking.models import Booking
from leads.instant import INSTANT_REASON
from leads.models import Lead
from routing import sqlwrites
from routing.models import LedgerEntry, PoolMember
from routing.overrides import OverrideCode, override_counts, override_problems, override_reason
from routing.services import assigned_entries, ledger_taken_back


class ManualRouteNotPossible(BookingError):
    code = "manual_route_not_possible"
    status = 409
    default_detail = "The lead cannot be routed to that rep."


def lead_pool(lead: Lead):
    """The pool a hand-routed lead is routed within: the lead's, else its meeting type's."""
    return lead.pool or lead.meeting_type.pool


def lead_charge(lead: Lead) -> LedgerEntry | None:
    """The ledger entry that charges ``lead`` to a rep without a booking: that of its latest counting
    routing by hand (``decision["history"]``), else that of its instant route (``leads.instant``). None
    when no counting routing charged it, or once a booking made with its route token took the charge over
    (the entry is linked to the booking, whose host holds the credit)."""
    decision = lead.decision if isinstance(lead.decision, dict) else {}
    charges = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ASSIGNED, booking__isnull=True)
    history = decision.get("history") or []
    entry_id = next((h["ledger_entry"] for h in reversed(history) if h.get("ledger_entry")), None)
    if entry_id is not None:
        return charges.filter(pk=entry_id).first()
    rep = decision.get("rep")
    if not isinstance(rep, dict) or lead.pool_id is None:  # not routed instantly
        return None
    reason = f"{INSTANT_REASON}: lead {lead.pk}"
    return charges.filter(pool_id=lead.pool_id, rep_id=rep.get("id"), reason=reason).first()


def lead_moves_booking(lead: Lead) -> bool:
    """Whether routing ``lead`` by hand reassigns its booking: it has one, confirmed."""
    return lead.booking is not None and lead.booking.status == Booking.Status.CONFIRMED


def lead_route_by_hand(
    *,
    lead_id: int,
    rep_id: int,
    code: str,
    note: str = "",
    actor: str = "",
    now: datetime | None = None,
    may_move_booking: bool = True,
) -> Lead:
    """Give the lead to ``rep_id`` for reason ``code`` (``routing.overrides.OverrideCode``); see the module
    docstring. Raises ``InvalidInput`` (bad code / missing note), ``ManualRouteNotPossible`` (not an active
    member, already the host, a booking to move and not ``may_move_booking``, booked meanwhile) or the
    booking errors of ``booking_reassign``."""
    from booking.services.reassign import booking_reassign

    problems = override_problems(code, note)
    if problems:
        raise InvalidInput({"note" if k == "reason" else k: v for k, v in problems.items()})
    now = now or dj_timezone.now()
    lead = Lead.objects.select_related("meeting_type__pool", "pool", "booking").get(pk=lead_id)
    pool = lead_pool(lead)
    member = (
        PoolMember.objects.select_related("rep")
        .filter(pool=pool, rep_id=rep_id, active=True, rep__active=True)
        .first()
        if pool is not None
        else None
    )
    if member is None:
        raise ManualRouteNotPossible(f"That rep is not an active member of the pool {pool}.")
    counts = override_counts(code)
    booking = lead.booking
    moved = lead_moves_booking(lead)
    if moved and not may_move_booking:
        raise ManualRouteNotPossible("Routing this lead moves its booking, which you may not change.")
    if moved:
        if booking.hosts.filter(active=True, rep_id=rep_id).exists():
            raise ManualRouteNotPossible("That rep already hosts the lead's booking.")
        booking_reassign(
            booking_id=booking.pk, to_member_id=member.pk, reason=note, code=code, actor=actor, now=now
        )
    with transaction.atomic(durable=True):
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if lead.booking_id is not None and lead.booking_id != (booking.pk if booking else None):
            # booked with its route token since the read above: nothing is written, the booking stays
            # where it went (charging the rep or moving nothing would count the lead twice)
            raise ManualRouteNotPossible("The lead was booked meanwhile; route it again.")
        charged = held = None
        if counts and not moved:
            held = lead_charge(lead)
            if held is not None:  # the credit moves: the rep the lead leaves loses it
                moved_at = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
                ledger_taken_back(
                    held,
                    reason=f"lead #{lead.pk} routed by hand to {member.rep.name} on {moved_at}: "
                    f"{override_reason(code, note)}",
                )
            (charged,) = sqlwrites.insert(
                assigned_entries(
                    pool_id=pool.pk,
                    rep_ids=[rep_id],
                    reason=f"{override_reason(code, note)} (lead #{lead.pk} routed by hand)",
                )
            )
        entry = {
            "at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "action": "routed_by_hand",
            "rep_id": rep_id,
            "rep": member.rep.name,
            "pool": pool.slug,
            "code": code,
            "reason": note[:300],
            "counts": counts,
            "booking": booking.pk if moved else None,
            "by": actor,
            "ledger_entry": charged.pk if charged is not None else None,
            "credit_from": held.rep_id if held is not None else None,  # the rep whose charge was taken back
        }
        decision = dict(lead.decision or {})
        decision["manual"] = entry
        decision["history"] = [*decision.get("history", []), entry]
        lead.decision = decision
        lead.outcome = Lead.Outcome.ROUTED
        lead.pool = pool
        lead.save(update_fields=["decision", "outcome", "pool"])
    return lead


__all__ = [
    "ManualRouteNotPossible",
    "OverrideCode",
    "lead_charge",
    "lead_moves_booking",
    "lead_pool",
    "lead_route_by_hand",
]
