"""One step of a simulation (``insights.simulator``): routing a lead, and moving a replayed booking at a
recorded reschedule.

A lead is assigned with ``routing.core.assign`` within its recorded route (``leads.tokens.Route.restrict``,
as ``booking.services.create`` applies it), without the reps found busy live. A reschedule frees the
booking's old slot and takes the new one, with the hosts it holds in the simulation (the reschedule kept its
hosts) or with hosts chosen again by the routing core then (it was routed again: within its route, a group
pool's free hosts keeping their seats, without the reps found busy live — as
``booking.services.manage.booking_reschedule`` does). ``state`` is the
simulator's ``_State``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from booking.services.routing import without
from booking.services.seats import seats_kept_routed
from insights.sim_types import Lead, Move, Outcome
from routing.core import MeetingSpec, NoHostAvailable, PoolSpec, assign, why_not_free

if TYPE_CHECKING:
    from insights.simulator import _State as State


def blocked(meeting: MeetingSpec, start: datetime) -> tuple[datetime, datetime]:
    return (
        start - timedelta(minutes=meeting.buffer_before_minutes),
        start + timedelta(minutes=meeting.duration_minutes + meeting.buffer_after_minutes),
    )


def reach(meeting: MeetingSpec) -> tuple[timedelta, timedelta]:
    """How far before / after a start a busy interval can matter: buffer before; meeting plus buffer after."""
    return (
        timedelta(minutes=meeting.buffer_before_minutes + 1),
        timedelta(minutes=meeting.duration_minutes + meeting.buffer_after_minutes + 1),
    )


def _cap_hit(record: dict) -> bool:
    return any(c.get("reason") == "cap" for c in record.get("candidates", ()))


@dataclass
class Held:
    """What a replayed booking holds in the simulation: hosts, start, and each host's ledger event (the
    instant its assignment counts from)."""

    hosts: tuple[int, ...]
    start: datetime
    events: dict[int, datetime]


def reschedule(state: State, lead: Lead, held: Held, move: Move, now: datetime) -> None:
    """Apply ``move`` to the booking ``held`` at ``now``. If nobody can host the new start (a policy the
    live one was not), the booking stays where it was, as a failed reschedule leaves it live."""
    meeting = lead.meeting
    old = blocked(meeting, held.start)
    for rep_id in held.hosts:
        state.release(rep_id, old, held.start, None)  # the booking's own slot does not count as busy
    hosts = held.hosts
    if not move.kept:
        before, length = reach(meeting)
        full = without(state.spec(now, move.start - before, move.start + length), set(move.live_busy))
        # a routed booking: its route's candidates only (a held host outside them may keep its seat)
        spec = full if lead.route is None else lead.route.restrict(full)
        try:
            assignment = _reroute(spec, full, meeting, held.hosts, now, move.start)
        except NoHostAvailable:
            for rep_id in held.hosts:
                state.take(rep_id, meeting, held.start)
            return
        hosts = tuple(h.rep_id for h in assignment.hosts)
    for rep_id in held.hosts:
        if rep_id not in hosts:  # released: the credit leaves with the host row
            state.unassigned(rep_id, held.events.pop(rep_id))
    for rep_id in hosts:
        if rep_id in held.events:
            state.take(rep_id, meeting, move.start)
        else:
            state.book(rep_id, meeting, move.start, now)
            held.events[rep_id] = now
    held.hosts, held.start = hosts, move.start


def _reroute(
    spec: PoolSpec,
    full: PoolSpec,
    meeting: MeetingSpec,
    held: tuple[int, ...],
    now: datetime,
    start: datetime,
):
    """Hosts for a booking routed again at ``start`` by ``spec`` (``full`` as its route restricts it): in a
    ``group`` pool the held hosts free then in ``full`` keep their seats, candidates of the route or not, and
    only the other roles are routed, when that can be done (``booking_reschedule``'s rule)."""
    if spec.strategy == "group":
        members = {m.rep_id: m for m in full.members}
        seated = {
            members[r].role: r
            for r in held
            if r in members and why_not_free(members[r], meeting, now=now, start=start) is None
        }
        if seated:
            try:
                return assign(seats_kept_routed(spec, full, seated), meeting, now=now, start=start)
            except NoHostAvailable:
                pass  # the rest cannot be routed with them: route them all
    return assign(spec, meeting, now=now, start=start)


def _assign(spec: PoolSpec, lead: Lead, now: datetime, start: datetime):
    """``assign`` within the lead's recorded route (its candidates, ranks and weights, applied by the route's
    own ``restrict`` as live booking does); if the route's reps cannot take ``start`` under this policy, the
    whole pool (``True``: a fallback)."""
    if lead.route is None:
        return assign(spec, lead.meeting, now=now, start=start), False
    try:
        return assign(lead.route.restrict(spec), lead.meeting, now=now, start=start), False
    except NoHostAvailable:
        return assign(spec, lead.meeting, now=now, start=start), True


def _first_choice_busy(state: State, lead: Lead, now: datetime, start: datetime) -> bool:
    """Would this policy's first choice have been one of the reps the providers reported busy live?"""
    before, length = reach(lead.meeting)
    try:
        first, _ = _assign(state.spec(now, start - before, start + length), lead, now, start)
    except NoHostAvailable:
        return False
    return any(h.rep_id in lead.live_busy for h in first.hosts)


def _next_start(state: State, lead: Lead, now: datetime, failed: datetime) -> list[datetime]:
    """The next start offered to the lead after its requested one ``failed``: within its route, without its
    reps busy live (those of the pool's offer would fail the same way, ``failed`` itself among them); if the
    route offers none, the whole pool's without them (``_assign`` falls back to it)."""
    busy = set(lead.live_busy)
    shapes = [lambda spec: without(spec, busy)]
    if lead.route is not None:
        shapes.insert(0, lambda spec: lead.route.restrict(without(spec, busy)))
    for shape in shapes:
        starts = [s for s in state.offered(lead.meeting, now, max(failed, now), 2, shape) if s != failed]
        if starts:
            return starts[:1]
    return []


def route(
    state: State, out: Outcome, lead: Lead, now: datetime, first: list[datetime]
) -> tuple[tuple[int, ...], datetime | None]:
    """Hosts and start for ``lead``. A fallback is counted when the recorded routing rules fell back, the
    route's reps cannot take the start under this policy, or this policy's first choice was busy live."""
    if lead.start is None:
        if not first:
            out.no_slot += 1
            return (), None
        starts = [first[min(lead.pick, len(first) - 1)]]
    else:
        starts = [lead.start]
    for attempt in range(2):
        start = starts[0]
        before, length = reach(lead.meeting)
        spec = without(state.spec(now, start - before, start + length), set(lead.live_busy))
        try:
            assignment, route_fallback = _assign(spec, lead, now, start)
        except NoHostAvailable as exc:
            if _cap_hit(exc.record):
                out.cap_hits += 1
            if attempt or lead.start is None:
                break
            starts = _next_start(state, lead, now, start)
            if not starts:
                break
            out.moved += 1
            continue
        if _cap_hit(assignment.record):
            out.cap_hits += 1
        hosts = tuple(h.rep_id for h in assignment.hosts)
        if (
            lead.rules_fallback
            or route_fallback
            or (lead.live_busy and _first_choice_busy(state, lead, now, start))
        ):
            out.fallbacks += 1
        if lead.owner is not None and lead.owner in hosts:
            out.owner_matches += 1
        for rep_id in hosts:
            state.book(rep_id, lead.meeting, start, now)
        return hosts, start
    out.no_slot += 1
    return (), None
