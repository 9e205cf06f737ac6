"""The fairness ledger: who is next up.

``MemberState.count`` already holds the counted bookings of the current fairness period plus the manual
adjustment; ``load = count / weight`` (weights are positive). **Next-up order** is ascending load, then the
earliest ``last_assigned`` (never assigned, ``None``, comes first), then rank, then rep id, so it is a total
order and does not depend on the order members are given in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from routing.core.types import MemberState

# Loads compare to 9 decimals: count / weight reaches one value by different floating-point roundings
# (1 / 0.3 = 3.3333333333333335, 3 / 0.9 = 3.333333333333333), and such a tie must go to the member who
# waited longest, as with weights 1 and 3, not to whichever division rounded down.
LOAD_DECIMALS = 9


def next_up_key(member: MemberState) -> tuple[float, int, float, int, int]:
    """Lowest load (count / weight) first; equal loads: never assigned, then the longest waiting; then rank
    and rep id."""
    last: datetime | None = member.last_assigned
    return (
        round(member.load, LOAD_DECIMALS),
        0 if last is None else 1,
        0.0 if last is None else last.timestamp(),
        member.rank,
        member.rep_id,
    )


def rank_key(member: MemberState) -> tuple:
    """Lowest rank first; ties in next-up order."""
    return (member.rank, *next_up_key(member))


def next_up_order(members: Iterable[MemberState]) -> list[MemberState]:
    """Members sorted into next-up order (inactive members included; strategies skip them)."""
    return sorted(members, key=next_up_key)


def head_start_expired(
    joined: Iterable[tuple[datetime, float]], *, start: datetime | None, now: datetime, rolling: bool
) -> float:
    """How much of a member's "joined at the mean load" deltas (``(recorded at, delta)`` of its current
    membership) no longer counts at ``now``, in a fairness period starting at ``start``.

    A delta recorded before the period started is spent in full: it stood for the others' bookings of an
    earlier period. In a rolling period the others' bookings it stood for leave the window one by one, so
    the delta is spent in step, linearly over the window's length (taken all at once on day 30 instead, the
    joiner was passed over for a month and then handed nearly every booking for days)."""
    if start is None:
        return 0.0
    window = (now - start).total_seconds()
    spent = 0.0
    for at, delta in joined:
        if at < start:
            spent += delta
        elif rolling and at <= now:
            spent += delta * (now - at).total_seconds() / window
    return spent


def mean_load(members: Iterable[MemberState]) -> float:
    """Mean load of the active members (member and rep active); 0.0 if there are none.

    The Django side starts a newly added member at this load so joining does not grant a run of bookings.
    """
    loads = [m.load for m in members if m.active and m.rep.active]
    return sum(loads) / len(loads) if loads else 0.0
