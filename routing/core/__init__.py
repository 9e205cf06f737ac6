"""Baton's routing core: which start times a pool offers and who hosts a booking.

Pure Python (no Django). Inputs are the frozen dataclasses of ``routing.core.types``; the semantics live in
the module docstrings: ``localtime`` (time zones and DST), ``availability`` (the slot grid rules),
``ledger`` (fairness), ``strategies`` (one module per strategy), ``results`` (decision record) and
``reasons`` (skip reason codes).
"""

from __future__ import annotations

from routing.core.api import assign, free_starts, offered_slots, strategy_for, why_not_free
from routing.core.ledger import mean_load, next_up_order
from routing.core.reasons import (
    BUSY,
    CAP,
    HORIZON,
    INACTIVE,
    NO_WORKING_HOURS,
    NOTICE,
    OFF_GRID,
    OUTSIDE_WORKING_HOURS,
    ROLE_FILLED,
    TIME_OFF,
    SkipReason,
)
from routing.core.results import Assignment, Host, NoHostAvailable
from routing.core.strategies import REGISTRY, STRATEGY_CHOICES, Strategy, register
from routing.core.types import Interval, MeetingSpec, MemberState, PoolSpec, RepSchedule, interval

__all__ = [
    "BUSY",
    "CAP",
    "HORIZON",
    "INACTIVE",
    "NOTICE",
    "NO_WORKING_HOURS",
    "OFF_GRID",
    "OUTSIDE_WORKING_HOURS",
    "REGISTRY",
    "ROLE_FILLED",
    "STRATEGY_CHOICES",
    "TIME_OFF",
    "Assignment",
    "Host",
    "Interval",
    "MeetingSpec",
    "MemberState",
    "NoHostAvailable",
    "PoolSpec",
    "RepSchedule",
    "SkipReason",
    "Strategy",
    "assign",
    "free_starts",
    "interval",
    "mean_load",
    "next_up_order",
    "offered_slots",
    "register",
    "strategy_for",
    "why_not_free",
]
