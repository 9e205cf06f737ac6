"""Choosing hosts inside a booking transaction: the routing core plus the live calendar check."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from booking.models import Booking, BookingHost, MeetingType
from routing.core import Assignment, Host, NoHostAvailable, assign
from routing.core.types import PoolSpec
from routing.selectors import PoolState, meeting_spec

# Candidate reasons that mean "this start is not bookable at all" (a 400), not "taken" (a 409).
INVALID_START_REASONS = {"notice", "horizon", "off_grid"}
# members that could take no start at all (checked before notice and horizon): they say nothing of the start;
# nor do the reasons the service gives members it set aside (``relabel``)
MEMBER_REASONS = {"inactive", "no_working_hours", "busy_live", "seat_kept"}


def hosts_busy_live(rep_ids, start, end, *, timeout_seconds, live=None):
    """Indirection so tests can stand in for the providers' free/busy (see ``calendars.live``). ``live``:
    the reps known to have a calendar to ask (``PoolState.live``); the others are not looked up."""
    from calendars.live import hosts_busy_live as busy_live

    if live is not None:
        rep_ids = [rid for rid in rep_ids if rid in live]
        if not rep_ids:
            return set()
    return busy_live(rep_ids, start, end, timeout_seconds=timeout_seconds)


def without(spec: PoolSpec, rep_ids: set[int]) -> PoolSpec:
    """``spec`` with the members of ``rep_ids`` made inactive (unavailable)."""
    if not rep_ids:
        return spec
    members = tuple(replace(m, active=False) if m.rep_id in rep_ids else m for m in spec.members)
    return replace(spec, members=members)


def relabel(record: dict[str, Any], why: dict[int, str], active: set[int]) -> None:
    """Say in ``record`` why the service set members aside (``without``), which the core, seeing them
    inactive, records as "inactive": ``why`` maps rep id → reason ("busy_live": found busy by the live
    check; "seat_kept": a group reschedule keeps that role's host). Only members of ``active`` (active in
    the pool and as reps) are relabelled: an inactive one stays "inactive"."""
    for candidate in record.get("candidates", ()):
        rep_id = candidate.get("rep_id")
        if candidate.get("reason") == "inactive" and rep_id in why and rep_id in active:
            candidate["reason"] = why[rep_id]


def seats_kept(spec: PoolSpec, seated: dict[str, int]) -> PoolSpec:
    """A ``group`` pool's ``spec`` for routing a rescheduled booking whose hosts in ``seated`` (role → rep
    id) keep their seats: the other members of those roles made unavailable, so only the other roles are
    routed (live in ``booking.services.manage``, replayed in ``insights.sim_steps``)."""
    return without(spec, {m.rep_id for m in spec.members if seated.get(m.role, m.rep_id) != m.rep_id})


def seat_role(stored: str, holder_role: str | None, roles_now) -> str | None:
    """The role of a group booking's seat: the host row's (``stored``) while a member of the pool has it (an
    SE promoted to AE hands on an SE seat), else the holder's role now (a role renamed since, or a pool made
    a group pool, left the row's role matching no member); None when neither says (the holder left)."""
    return stored if stored in roles_now else holder_role


def blocked_range(meeting_type: MeetingType, start: datetime) -> tuple[datetime, datetime]:
    end = start + timedelta(minutes=meeting_type.duration_minutes)
    return (
        start - timedelta(minutes=meeting_type.buffer_before_minutes),
        end + timedelta(minutes=meeting_type.buffer_after_minutes),
    )


def invalid_start(record: dict[str, Any]) -> str | None:
    """A field message when every candidate refused the start as not bookable (grid/notice/horizon), the
    members who could take no start at all (on leave, no hours) aside: with one of them in the pool a start
    too soon was answered 409 "no longer available" instead of 400 "too soon"."""
    reasons = {c.get("reason") for c in record.get("candidates", []) if c.get("outcome") == "skipped"}
    reasons -= MEMBER_REASONS
    if not reasons or not reasons <= INVALID_START_REASONS:
        return None
    if "notice" in reasons:
        return "This start is too soon (minimum notice)."
    if "horizon" in reasons:
        return "This start is too far ahead (booking horizon)."
    return "This start is not on the booking grid."


def choose_hosts(
    state: PoolState,
    meeting_type: MeetingType,
    *,
    start: datetime,
    now: datetime,
    exclude: set[int] | None = None,
    live_free: frozenset[int] = frozenset(),
    live_busy: tuple[int, ...] = (),
) -> Assignment:
    """Assign with the routing core, then ask the providers live about the chosen hosts only; a host busy
    live is excluded and the pool re-assigned. Raises ``NoHostAvailable`` (record attached) when nobody is
    left. The record lists ``withheld`` reps and reps found ``live_busy``. ``live_free``/``live_busy``: reps
    already asked for this booking (just before its transaction); they are not asked again."""
    spec = meeting_spec(meeting_type)
    blocked = blocked_range(meeting_type, start)
    excluded = set(exclude or ()) | set(live_busy)
    found_busy: list[int] = list(live_busy)
    timeout = settings.BOOKING_LIVE_CHECK_TIMEOUT_MS / 1000
    active = {m.rep_id for m in state.spec.members if m.active}
    while True:
        try:
            assignment = assign(without(state.spec, excluded), spec, now=now, start=start)
        except NoHostAvailable as exc:
            relabel(exc.record, dict.fromkeys(excluded, "busy_live"), active)
            exc.record.update(withheld=sorted(state.withheld), live_busy=found_busy)
            raise
        ask = [h.rep_id for h in assignment.hosts if h.rep_id not in live_free]
        busy = hosts_busy_live(ask, *blocked, timeout_seconds=timeout, live=state.live) if ask else set()
        if not busy:
            relabel(assignment.record, dict.fromkeys(excluded, "busy_live"), active)
            assignment.record.update(withheld=sorted(state.withheld), live_busy=found_busy)
            return assignment
        found_busy.extend(sorted(busy))
        excluded |= busy


def host_rows(booking: Booking, hosts: tuple[Host, ...], meeting_type: MeetingType, *, now: datetime):
    blocked_start, blocked_end = blocked_range(meeting_type, booking.start)
    return [
        BookingHost(
            booking=booking,
            rep_id=h.rep_id,
            role=h.role,
            blocked_start=blocked_start,
            blocked_end=blocked_end,
            active=True,
            assigned_at=now,
        )
        for h in hosts
    ]


def host_dicts(hosts: list[BookingHost], members: dict) -> list[dict]:
    """JSON-ready host descriptions for outbox payloads and responses (reps loaded via ``members``)."""
    out = []
    for host in hosts:
        rep = members[host.rep_id].rep if host.rep_id in members else host.rep
        out.append(
            {
                "rep_id": host.rep_id,
                "name": rep.name,
                "email": rep.email,
                "role": host.role,
                "timezone": rep.timezone,
            }
        )
    return out
