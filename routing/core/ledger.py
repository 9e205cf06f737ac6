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


def next_up_key(member: MemberState) -> tuple[float, int, float, int, int]:
    last: datetime | None = member.last_assigned
    return (
        member.load,
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


def mean_load(members: Iterable[MemberState]) -> float:
    """Mean load of the active members (member and rep active); 0.0 if there are none.

    The Django side starts a newly added member at this load so joining does not grant a run of bookings.
    """
    loads = [m.load for m in members if m.active and m.rep.active]
    return sum(loads) / len(loads) if loads else 0.0
