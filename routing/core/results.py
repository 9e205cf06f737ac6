"""What ``assign`` returns: hosts plus a small, JSON-serialisable decision record.

Decision record (only str/int/float/bool/None/list/dict; instants as ISO-8601 UTC strings ending in ``Z``)::

    {"strategy": "first_available",
     "start": "2026-03-10T14:00:00Z",
     "candidates": [                       # in the order they were considered
        {"rep_id": 3, "name": "Ana", "role": "", "count": 2.0, "weight": 1.0, "load": 2.0,
         "last_assigned": "2026-03-02T15:00:00Z" | None, "rank": 0,
         "outcome": "chosen" | "skipped" | "not_needed", "reason": "busy" | None}],
     "hosts": [{"rep_id": 3, "role": ""}]}

``skipped`` candidates carry a skip reason code (``reasons.SkipReason``); candidates after the chosen one
were not evaluated and are ``not_needed`` (reason ``None``, or ``role_filled`` in group pools). A count,
weight or load that is not a finite number is ``None`` (``finite``). When nobody can host, ``hosts`` is
empty and the record is attached to ``NoHostAvailable``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from routing.core.types import MemberState

CHOSEN = "chosen"
SKIPPED = "skipped"
NOT_NEEDED = "not_needed"


@dataclass(frozen=True, slots=True)
class Host:
    rep_id: int
    role: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    hosts: tuple[Host, ...]
    record: dict[str, Any]


class NoHostAvailable(Exception):
    """Nobody (or, in a group pool, nobody for some role) is free at the requested start."""

    code = "slot_unavailable"

    def __init__(self, record: dict[str, Any]):
        super().__init__(f"no host available at {record.get('start')}")
        self.record = record


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def finite(number: float) -> float | None:
    """``number`` as a float for the record, None when it is not finite: JSON has no Infinity or NaN, and a
    record holding one was refused by the database (an infinite load made every booking of its pool a
    500; the admin bounds ``weight`` and ``adjustment`` now, this keeps any other way out)."""
    value = float(number)
    return value if math.isfinite(value) else None


def candidate(member: MemberState, outcome: str, reason: str | None) -> dict[str, Any]:
    return {
        "rep_id": member.rep_id,
        "name": member.rep.name,
        "role": member.role,
        "count": finite(member.count),
        "weight": finite(member.weight),
        "load": finite(member.load),
        "last_assigned": iso(member.last_assigned),
        "rank": member.rank,
        "outcome": outcome,
        "reason": None if reason is None else str(reason),
    }


def make_record(
    strategy: str, start: datetime, candidates: list[dict[str, Any]], hosts: list[Host]
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "start": iso(start),
        "candidates": candidates,
        "hosts": [{"rep_id": h.rep_id, "role": h.role} for h in hosts],
    }
