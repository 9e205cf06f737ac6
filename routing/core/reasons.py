"""Stable skip reason codes, stored in decision records and returned by ``why_not_free``.

``why_not_free`` checks in this order and reports the first that applies, so a member who is both outside
working hours and busy is reported as ``outside_working_hours``:

1. ``inactive`` – the pool membership or the rep is inactive.
2. ``no_working_hours`` – the rep has no weekly hours and no non-empty date override at all.
3. ``notice`` – the start is earlier than ``now`` + minimum notice.
4. ``horizon`` – the start is at or after ``now`` + horizon days.
5. ``off_grid`` – the start's local wall-clock time is not a whole multiple of the slot interval after local
   midnight (or the start has fractional seconds).
6. ``outside_working_hours`` – ``[start, start + duration)`` is not inside one working window.
7. ``time_off`` – the meeting would overlap the rep's time off.
8. ``cap`` – the rep's daily cap or the member's pool daily cap is reached on the start's local date.
9. ``busy`` – ``[start − buffer_before, start + duration + buffer_after)`` overlaps a busy interval.

``role_filled`` is never returned by ``why_not_free``; group decision records use it for members of a role
whose host was already chosen.
"""

from __future__ import annotations

from enum import StrEnum


class SkipReason(StrEnum):
    INACTIVE = "inactive"
    NO_WORKING_HOURS = "no_working_hours"
    NOTICE = "notice"
    HORIZON = "horizon"
    OFF_GRID = "off_grid"
    OUTSIDE_WORKING_HOURS = "outside_working_hours"
    TIME_OFF = "time_off"
    CAP = "cap"
    BUSY = "busy"
    ROLE_FILLED = "role_filled"


INACTIVE = SkipReason.INACTIVE
NO_WORKING_HOURS = SkipReason.NO_WORKING_HOURS
NOTICE = SkipReason.NOTICE
HORIZON = SkipReason.HORIZON
OFF_GRID = SkipReason.OFF_GRID
OUTSIDE_WORKING_HOURS = SkipReason.OUTSIDE_WORKING_HOURS
TIME_OFF = SkipReason.TIME_OFF
CAP = SkipReason.CAP
BUSY = SkipReason.BUSY
ROLE_FILLED = SkipReason.ROLE_FILLED
