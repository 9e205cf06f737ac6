"""Changing a booking: cancel, reschedule, reassign (admin), mark completed / no-show.

Every change runs in one durable transaction whose lock waits end after ``BOOKING_LOCK_TIMEOUT_MS`` from its
first statement on (``locking.change``: the booking row's lock included), locks the booking row (and, when
hosts may change, the reps, sorted), raises ``Booking.sequence`` and writes an outbox event. The old slot is
freed only in the same transaction that secures the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone as dj_timezone

from booking import emails, outbox
from booking.errors import (
    BookingError,
    InvalidInput,
    SlotUnavailable,
)
from booking.models import HOST_ORDER, Booking, BookingHost
from booking.presenters import booking_body, manage_url
from booking.selectors import as_routed, booking_by_token, booking_changeable, reschedule_alternatives
from booking.services import locking
from booking.services.routing import (
    blocked_range,
    choose_hosts,
    host_dicts,
    hosts_busy_live,
    invalid_start,
    relabel,
    seat_role,
)
from booking.services.seats import seats_kept_routed
from calendars.selectors import calendar_health
from routing.core import Assignment, Interval, NoHostAvailable, why_not_free
from routing.credit import credit_holder as _credit_holder  # also imported from here by reassign, outcomes
from routing.models import PoolMember
from routing.selectors import PoolState, load_pool_state, meeting_spec
from routing.services import ledger_reassigned, ledger_released

Released = BookingHost.Released


def _history(booking: Booking, entry: dict[str, Any]) -> None:
    decision = dict(booking.decision or {})
    decision["history"] = [*decision.get("history", []), entry]
    booking.decision = decision


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def booking_cancel(*, token: str, reason: str = "", now: datetime | None = None) -> dict:
    """Cancel the booking: free its hosts' time, credit fairness back per the pool, send CANCEL."""
    now = now or dj_timezone.now()

    def run():
        with locking.change():
            booking = booking_by_token(token, for_update=True)
            booking_changeable(booking, now=now)
            hosts = list(booking.hosts.filter(active=True).select_related("rep").order_by(*HOST_ORDER))
            locking.lock_reps(h.rep_id for h in hosts)  # see ``locking.lock_reps``: the tallies move
            BookingHost.objects.filter(pk__in=[h.pk for h in hosts]).update(
                active=False, released=Released.CANCELLED
            )
            booking.status = Booking.Status.CANCELLED
            booking.cancelled_at = now
            booking.cancel_reason = reason[:500]
            booking.sequence += 1
            _history(booking, {"at": _iso(now), "action": "cancelled", "reason": booking.cancel_reason})
            booking.save()
            history = (booking.decision or {}).get("history") or []
            ledger_released(
                pool=booking.pool,
                booking_id=booking.pk,
                rep_ids=[_credit_holder(history, h.rep_id) for h in hosts],  # a host seated by an override
                status="cancelled",
                reason=f"booking cancelled {reason}".strip(),
            )
            described = host_dicts(hosts, {})
            outbox.emit(
                "booking.cancelled",
                booking,
                context={"hosts": described, "reason": booking.cancel_reason},
                secrets={"manage_url": manage_url(token)},
                now=now,
            )
            return booking_body(booking, described, now=now)

    return locking.conflicts(run)


def _live_busy_outside(rep_ids: list[int], new: tuple[datetime, datetime], old: tuple[datetime, datetime]):
    """Reps busy live in the part of ``new`` outside ``old`` (their own event fills ``old``)."""
    from django.conf import settings

    pieces = [(new[0], min(new[1], old[0])), (max(new[0], old[1]), new[1])]
    busy: set[int] = set()
    for lo, hi in pieces:
        if lo < hi and rep_ids:
            busy |= hosts_busy_live(
                rep_ids, lo, hi, timeout_seconds=settings.BOOKING_LIVE_CHECK_TIMEOUT_MS / 1000
            )
    return busy


def _move_hosts(
    booking: Booking,
    rows: list[BookingHost],
    new_hosts: dict[int, str],
    *,
    blocked: tuple[datetime, datetime],
    now: datetime,
):
    """Make ``new_hosts`` (rep id → role) the active hosts of the booking, blocking ``blocked`` (its
    buffered range: a reschedule's new one, ``blocked_range``; a reassignment's as booked). Returns
    (active rows, released rows)."""
    blocked_start, blocked_end = blocked
    by_rep = {row.rep_id: row for row in rows}
    released, changed = [], []
    for row in rows:
        if row.rep_id in new_hosts:
            if not row.active:
                row.assigned_at = now
            row.active, row.released, row.role = True, Released.NO, new_hosts[row.rep_id]
            row.blocked_start, row.blocked_end = blocked_start, blocked_end
            changed.append(row)
        elif row.active:
            row.active, row.released = False, Released.REASSIGNED
            changed.append(row)
            released.append(row)
    # free first, then take: one rep's rows never overlap each other
    BookingHost.objects.bulk_update([r for r in changed if not r.active], ["active", "released"])
    BookingHost.objects.bulk_update(
        [r for r in changed if r.active],
        ["active", "released", "role", "blocked_start", "blocked_end", "assigned_at"],
    )
    added = BookingHost.objects.bulk_create(
        [
            BookingHost(
                booking=booking,
                rep_id=rid,
                role=role,
                blocked_start=blocked_start,
                blocked_end=blocked_end,
                active=True,
                assigned_at=now,
            )
            for rid, role in new_hosts.items()
            if rid not in by_rep
        ]
    )
    active = [r for r in rows if r.active] + added
    active.sort(key=lambda r: (r.role, list(new_hosts).index(r.rep_id)))  # HOST_ORDER
    return active, released


@dataclass
class _Asked:
    """Live free/busy answers gathered for a reschedule before its transaction (as ``booking_create``
    does): a provider may take ``BOOKING_LIVE_CHECK_TIMEOUT_MS`` to answer, and under the rep locks it
    would hold every booking of the pool that long. Under the locks, only hosts not asked here are asked."""

    kept: dict = field(default_factory=dict)  # (current hosts, their old range) → busy outside it
    free: frozenset[int] = frozenset()  # chosen by routing again, free
    busy: tuple[int, ...] = ()  # chosen by routing again, busy


def _new_hosts(
    booking: Booking,
    current: list[BookingHost],
    state: PoolState,
    *,
    start: datetime,
    now: datetime,
    asked: _Asked,
) -> tuple[bool, set[int], Assignment | None]:
    """(keep, busy, assignment): keep the current hosts when all are free at ``start`` (``busy``: those of
    them busy live in the new range outside their old one), otherwise route again (``assignment``): in a
    ``group`` pool the hosts free then keep their seats and only the other roles are routed, when that can
    be done. Raises ``NoHostAvailable``."""
    meeting_type = booking.meeting_type
    spec = meeting_spec(meeting_type)
    members = {m.rep_id: m for m in state.spec.members}
    free = [
        r
        for r in current
        if r.rep_id in members and why_not_free(members[r.rep_id], spec, now=now, start=start) is None
    ]
    old = (current[0].blocked_start, current[0].blocked_end) if current else None
    new = blocked_range(meeting_type, start)
    busy: set[int] = set()
    if current and len(free) == len(current):
        busy = _kept_busy(asked, [r.rep_id for r in current], new=new, old=old)
        if not busy:
            return True, busy, None
    routed = replace(state, spec=as_routed(state.spec, booking))  # a routed booking: its candidates only
    # the free hosts' seats by ``seat_role`` (two free hosts never fall on one role)
    roles_now = {m.role for m in members.values()}
    seated = {
        seat_role(r.role, members[r.rep_id].role, roles_now): r.rep_id for r in free if r.rep_id not in busy
    }
    if state.spec.strategy == "group" and seated:
        # the hosts still free keep their seats (the prospect keeps their AE; a host seated outside the route
        # too: ``seats_kept_routed``); only the other roles are routed
        late = _kept_busy(asked, list(seated.values()), new=new, old=old)
        seated = {role: rep_id for role, rep_id in seated.items() if rep_id not in late}
        try:
            assignment = choose_hosts(
                replace(routed, spec=seats_kept_routed(routed.spec, state.spec, seated)),
                meeting_type,
                start=start,
                now=now,
                exclude=busy,
                live_free=asked.free | frozenset(seated.values()),  # asked just now, outside the old time
                live_busy=asked.busy,
            )
            kept = {m.rep_id: "seat_kept" for m in routed.spec.members if m.role in seated}
            relabel(assignment.record, kept, {m.rep_id for m in routed.spec.members if m.active})
            return False, busy, assignment
        except NoHostAvailable:
            pass  # the rest cannot be routed with them: route them all
    assignment = choose_hosts(
        routed, meeting_type, start=start, now=now, exclude=busy, live_free=asked.free, live_busy=asked.busy
    )
    return False, busy, assignment


def _kept_busy(asked: _Asked, rep_ids: list[int], *, new, old) -> set[int]:
    """Of hosts who keep the booking, those busy live in its ``new`` range outside its ``old`` one (their
    own event fills that), asked once per reschedule: before its transaction, and remembered there."""
    key = (tuple(sorted(rep_ids)), old)
    if key not in asked.kept:
        asked.kept[key] = _live_busy_outside(list(key[0]), new, old)
    return set(asked.kept[key])


def _ask_before(token: str, *, start: datetime, now: datetime) -> _Asked:
    """The reschedule's decision taken once before its transaction, for its live answers only (none when
    no member of the pool has a calendar to ask). Anything wrong here is left to the transaction to say."""
    asked = _Asked()
    try:
        booking = booking_by_token(token)
        booking_changeable(booking, now=now)
    except BookingError:
        return asked
    if start == booking.start:  # nothing to ask: the transaction changes nothing
        return asked
    current = list(booking.hosts.filter(active=True).order_by(*HOST_ORDER))
    reps = set(PoolMember.objects.filter(pool_id=booking.pool_id).values_list("rep_id", flat=True))
    if not calendar_health(reps | {r.rep_id for r in current}, now=now).live:  # nobody to ask: one query
        return asked
    end = start + timedelta(minutes=booking.meeting_type.duration_minutes)
    window = Interval(start, end)
    state = load_pool_state(
        booking.pool, booking.meeting_type, now=now, window=window, exclude_booking_id=booking.pk
    )
    try:
        keep, _busy, assignment = _new_hosts(booking, current, state, start=start, now=now, asked=asked)
    except NoHostAvailable:
        return asked
    if not keep:
        asked.free = frozenset(h.rep_id for h in assignment.hosts)
        asked.busy = tuple(assignment.record["live_busy"])
    return asked


def booking_reschedule(
    *, token: str, start: datetime, zone: str | None = None, now: datetime | None = None
) -> dict:
    """Move the booking to ``start``. The same host(s) keep it when all are free then (their own current
    booking not counting as busy); otherwise the pool routes it again. Raises like ``booking_create``.
    ``start`` equal to the booking's own start changes nothing (no new sequence, no e-mails)."""
    now = now or dj_timezone.now()
    if start.tzinfo is None or start.utcoffset() is None:
        raise InvalidInput({"start": ["Give the time zone offset, e.g. 2026-03-10T09:00:00+01:00."]})
    start = start.astimezone(UTC)
    if start.second or start.microsecond:
        raise InvalidInput({"start": ["This start is not on the booking grid."]})
    holder: dict[str, Any] = {}
    asked = _ask_before(token, start=start, now=now)

    def run():
        with locking.change():
            booking = booking_by_token(token, for_update=True)
            holder["booking"] = booking
            booking_changeable(booking, now=now)
            meeting_type, pool = booking.meeting_type, booking.pool
            rows = list(booking.hosts.select_related("rep").order_by(*HOST_ORDER))
            current = [r for r in rows if r.active]
            if start == booking.start:  # nothing moves: a retried request changes and sends nothing
                return booking_body(booking, host_dicts(current, {}), zone=zone, now=now)
            member_reps = set(PoolMember.objects.filter(pool_id=pool.pk).values_list("rep_id", flat=True))
            locking.lock_reps(member_reps | {r.rep_id for r in current})
            end = start + timedelta(minutes=meeting_type.duration_minutes)
            state = load_pool_state(
                pool, meeting_type, now=now, window=Interval(start, end), exclude_booking_id=booking.pk
            )
            previous = {"start": _iso(booking.start), "hosts": [r.rep_id for r in current]}
            held = emails.previous(booking, current)  # for the CANCEL of a host it releases
            try:
                decided = _new_hosts(booking, current, state, start=start, now=now, asked=asked)
            except NoHostAvailable as exc:
                message = invalid_start(exc.record)
                raise (InvalidInput({"start": [message]}) if message else SlotUnavailable()) from None
            keep, busy, assignment = decided
            if keep:
                new_hosts = {r.rep_id: r.role for r in current}
            else:
                new_hosts = {h.rep_id: h.role for h in assignment.hosts}
                kept = {k: v for k, v in (booking.decision or {}).items() if k in ("route", "history")}
                booking.decision = {**assignment.record, "history": [], **kept}
            booking.start, booking.end = start, end
            booking.sequence += 1
            _history(
                booking,
                {
                    "at": _iso(now),
                    "action": "rescheduled",
                    "from": previous,
                    "to": _iso(start),
                    "kept_hosts": keep,
                    "live_busy": sorted(busy),
                },
            )
            booking.save()
            active, released = _move_hosts(
                booking, rows, new_hosts, blocked=blocked_range(meeting_type, start), now=now
            )
            moved_to = [r.rep_id for r in active if r.rep_id not in previous["hosts"]]
            if released or moved_to:
                # the credit moves from whoever holds it: a host seated by a non-counting override holds none
                history = (booking.decision or {}).get("history") or []
                holders = [_credit_holder(history, r.rep_id) for r in released]
                ledger_reassigned(
                    pool_id=pool.pk,
                    booking_id=booking.pk,
                    from_rep_ids=holders,
                    to_rep_ids=moved_to,
                    reason="rescheduled: routed again",
                )
                without_credit = [r.rep_id for r, h in zip(released, holders, strict=True) if h != r.rep_id]
                if without_credit:
                    ledger_reassigned(
                        pool_id=pool.pk,
                        booking_id=booking.pk,
                        from_rep_ids=without_credit,
                        to_rep_ids=[],
                        reason="rescheduled: routed again",
                        counts=False,
                    )
            described = host_dicts(active, state.members)
            outbox.emit(
                "booking.rescheduled",
                booking,
                context={
                    "hosts": described,
                    "released": host_dicts(released, {}),
                    "previous": held,
                    "added": moved_to,
                },
                secrets={"manage_url": manage_url(token)},
                now=now,
            )
            return booking_body(booking, described, zone=zone, now=now)

    try:
        return locking.conflicts(run)
    except SlotUnavailable:
        # read again: a transaction refused by the exclusion constraint has moved the booking in memory
        found = Booking.objects.select_related("meeting_type", "pool").filter(pk=holder["booking"].pk)
        booking = found.first()
        if booking is None:
            raise
        tz = ZoneInfo(zone or booking.prospect_timezone)
        raise SlotUnavailable(
            alternatives=reschedule_alternatives(booking, after=start, zone=tz, now=now)
        ) from None
