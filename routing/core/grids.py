"""Whether the slot grids of a group pool's roles ever share a start (pure Python, no Django).

Each rep's grid follows their own wall clock (``availability``, rule 2): a start is on it iff its local time
is a whole multiple of the slot interval after local midnight. In UTC that is, while the zone's offset stays
``off``, the seconds of the day ``(g − off) mod 86400`` for the local grid points ``g``. A group meeting
needs one host of every role at the same start, so a group pool offers nothing at all when, at every moment,
the union of one role's members' grids misses the union of another's: a Berlin AE (UTC+01:00 or +02:00)
starts on the hour in UTC on a 60-minute grid, a Kolkata SE (UTC+05:30) on the half hour, and they never meet.

``grids_meet`` answers over a span (a year by default, so both offsets of every zone with daylight saving
time are seen, in the combinations that really occur): the span is cut wherever any of the zones changes its
offset and each piece is checked with the offsets it has. A piece shorter than a day is taken as if all its
seconds of the day occurred, so the answer leans to "they meet" (a warning is never given wrongly).
Working hours, time off and busy times are not considered: they change; the grid does not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import lru_cache

from routing.core.localtime import DAY, offset_at, segments_for, to_epoch_floor

YEAR_DAYS = 366


@lru_cache(maxsize=4096)
def _grid(step: int, offset: int) -> frozenset[int]:
    """The UTC seconds of the day at which a zone at UTC offset ``offset`` (seconds) has a grid start."""
    return frozenset((g - offset) % DAY for g in range(0, DAY, step))


def _span(start: datetime, days: int) -> tuple[int, int]:
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    lo = to_epoch_floor(start)
    return lo, lo + days * DAY


def _cuts(zones: Collection[str], lo: int, hi: int) -> list[int]:
    """``lo`` and every instant in ``(lo, hi)`` at which one of ``zones`` changes its UTC offset."""
    cuts = {lo}
    for zone in zones:
        cuts.update(s0 for s0, _s1, _off in segments_for(zone, lo, hi) if lo < s0 < hi)
    return sorted(cuts)


def grids_meet(
    roles: Sequence[Collection[str]], step_minutes: int, *, start: datetime, days: int = YEAR_DAYS
) -> bool:
    """Whether some start in ``[start, start + days)`` is on the ``step_minutes`` grid of at least one zone
    of every role (``roles``: per role, the IANA zones of its members who can host). A role without a
    zone never meets the others; a single role always has starts."""
    if step_minutes <= 0:
        raise ValueError("the slot interval must be positive")
    if not roles or not all(roles):
        return False
    if len(roles) == 1:
        return True
    step = step_minutes * 60
    lo, hi = _span(start, days)
    for cut in _cuts({zone for role in roles for zone in role}, lo, hi):
        common: frozenset[int] | None = None
        for zones in roles:
            starts = frozenset().union(*(_grid(step, offset_at(zone, cut)) for zone in zones))
            common = starts if common is None else common & starts
            if not common:
                break
        if common:
            return True
    return False


def zone_offsets(zone: str, *, start: datetime, days: int = YEAR_DAYS) -> list[int]:
    """The UTC offsets (seconds, ascending) ``zone`` has in ``[start, start + days)``."""
    lo, hi = _span(start, days)
    return sorted({off for s0, s1, off in segments_for(zone, lo, hi) if s0 < hi and s1 > lo})


def offset_text(offset: int) -> str:
    """``UTC+05:30`` for 19800 seconds (``UTC-03:00``, ``UTC+00:00``; seconds only where there are any)."""
    sign = "-" if offset < 0 else "+"
    hours, rest = divmod(abs(offset), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}" + (f":{seconds:02d}" if seconds else "")
