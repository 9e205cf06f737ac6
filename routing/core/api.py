"""The public entry points of the routing core (pure functions; no Django, no I/O).

All instants passed in must be timezone-aware; all instants returned are UTC-aware ``datetime`` objects.
"""

from __future__ import annotations

from datetime import datetime

from routing.core.availability import Request, free_epochs, reason_at
from routing.core.localtime import from_epoch, to_epoch_ceil
from routing.core.reasons import SkipReason
from routing.core.results import Assignment, NoHostAvailable, make_record
from routing.core.strategies import REGISTRY, Strategy
from routing.core.types import Interval, MeetingSpec, MemberState, PoolSpec


def strategy_for(pool: PoolSpec) -> Strategy:
    try:
        return REGISTRY[pool.strategy]
    except KeyError:
        raise ValueError(f"unknown routing strategy {pool.strategy!r}") from None


def _window(window: Interval) -> tuple[int, int]:
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise ValueError("window must be timezone-aware")
    return to_epoch_ceil(window.start), to_epoch_ceil(window.end)


def offered_slots(pool: PoolSpec, meeting: MeetingSpec, *, now: datetime, window: Interval) -> list[datetime]:
    """Start instants in ``window`` (start inclusive, end exclusive) that ``pool``'s strategy offers.

    Sorted, de-duplicated, UTC-aware. Never earlier than ``now`` + notice nor at/after ``now`` + horizon.
    """
    req = Request.build(meeting, now)
    lo, hi = _window(window)
    starts = strategy_for(pool).offered(pool, req, lo, hi)
    return [from_epoch(t) for t in sorted(set(starts))]


def assign(pool: PoolSpec, meeting: MeetingSpec, *, now: datetime, start: datetime) -> Assignment:
    """Choose the host(s) for a booking at ``start``; raise ``NoHostAvailable`` (with the record) if none."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    strategy = strategy_for(pool)
    req = Request.build(meeting, now)
    hosts, candidates = strategy.choose(pool, req, start)
    record = make_record(strategy.key, start, candidates, hosts)
    if not hosts:
        raise NoHostAvailable(record)
    return Assignment(hosts=tuple(hosts), record=record)


def why_not_free(
    member: MemberState, meeting: MeetingSpec, *, now: datetime, start: datetime, booking_rules: bool = True
) -> SkipReason | None:
    """None if ``member`` is free at ``start``, else the first failing rule's code (see ``reasons``).
    ``booking_rules=False``: whether ``member`` can host a meeting already booked at ``start`` (an admin's
    reassignment): the rules of offering a start to a prospect (``notice``, ``horizon``, ``off_grid``) are
    not checked."""
    return reason_at(member, Request.build(meeting, now), start, booking_rules=booking_rules)


def free_starts(
    member: MemberState, meeting: MeetingSpec, *, now: datetime, window: Interval
) -> list[datetime]:
    """One member's free start instants in ``window`` (start inclusive, end exclusive), ascending, UTC."""
    lo, hi = _window(window)
    return [from_epoch(t) for t in free_epochs(member, Request.build(meeting, now), lo, hi)]
