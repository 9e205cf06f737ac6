"""Wall-clock ↔ UTC conversion, done once per (zone, local date, time) and cached.

Internally the core works in integer **epoch seconds** (UTC). Local calendar days are numbered as days since
1970-01-01 ("local day numbers"), so the local day of instant ``t`` in a zone whose offset at ``t`` is ``off``
seconds is ``(t + off) // DAY`` and the wall-clock second of that day is ``(t + off) % DAY``.

Rules for turning a local wall-clock time into an instant:

* A local time that does not exist (spring-forward gap) moves forward by the length of the gap, via
  ``dateutil.tz.resolve_imaginary``: 02:30 on 2026-03-08 in America/New_York becomes 03:30 EDT. A whole
  date a zone skipped (Pacific/Apia crossing the date line, 2011-12-30) has no working hours at all
  (``availability.working_windows``): moved forward by the 24-hour gap they were the next day's.
* An ambiguous local time (fall-back overlap) means its first occurrence (``fold=0``): 01:30 on 2026-11-01
  in America/New_York is 01:30 EDT (05:30 UTC), not 01:30 EST.
* Second 86400 of a day (a range ending at ``time(0)``) is midnight at the start of the next local day.

``offset_segments`` splits a UTC span into pieces of constant UTC offset, found by sampling every six hours
and bisecting to the exact second of each transition, so grid arithmetic never needs a per-slot conversion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from dateutil import tz as dateutil_tz

DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SAMPLE = 6 * 3600


@cache
def get_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_number(d: date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return d.toordinal() - EPOCH_ORDINAL


def day_date(day: int) -> date:
    return date.fromordinal(day + EPOCH_ORDINAL)


def weekday_of(day: int) -> int:
    """Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def seconds_of(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@lru_cache(maxsize=1 << 16)
def local_to_epoch(zone_name: str, day: int, second: int) -> int:
    """The instant of wall-clock ``second`` (0 … 86400) on local day ``day`` in ``zone_name``."""
    d = day_date(day)
    if second >= DAY:
        d += timedelta(days=second // DAY)
        second %= DAY
    # fold=0: an ambiguous time means its first occurrence; resolve_imaginary moves a gap time forward
    hms = (second // 3600, second // 60 % 60, second % 60)
    wall = datetime(d.year, d.month, d.day, *hms, tzinfo=get_zone(zone_name))
    aware = dateutil_tz.resolve_imaginary(wall)
    return int((aware - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())


def offset_at(zone_name: str, t: int) -> int:
    """UTC offset in seconds of ``zone_name`` at epoch second ``t``."""
    off = datetime.fromtimestamp(t, get_zone(zone_name)).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@lru_cache(maxsize=4096)
def offset_segments(zone_name: str, first_day: int, last_day: int) -> tuple[tuple[int, int, int], ...]:
    """Pieces ``(start, end, offset)`` of constant offset covering UTC days ``first_day … last_day``.

    Assumes at most one transition per six hours, which holds for every zone in the tz database.
    """
    t0, t1 = first_day * DAY, (last_day + 1) * DAY
    segments: list[tuple[int, int, int]] = []
    seg_start, seg_off = t0, offset_at(zone_name, t0)
    t = t0
    while t < t1:
        nxt = min(t + _SAMPLE, t1 - 1)
        if nxt <= t:
            break
        if offset_at(zone_name, nxt) != seg_off:
            lo, hi = t, nxt  # offset(lo) == seg_off != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(zone_name, mid) == seg_off:
                    lo = mid
                else:
                    hi = mid
            segments.append((seg_start, hi, seg_off))
            seg_start, seg_off = hi, offset_at(zone_name, hi)
        t = nxt
    segments.append((seg_start, t1, seg_off))
    return tuple(segments)


def segments_for(zone_name: str, lo: int, hi: int) -> tuple[tuple[int, int, int], ...]:
    """Constant-offset pieces covering at least ``[lo, hi)``."""
    return offset_segments(zone_name, lo // DAY, (hi - 1) // DAY if hi > lo else lo // DAY)


def to_epoch_floor(dt: datetime) -> int:
    ts = dt.timestamp()
    i = int(ts)
    return i - 1 if i > ts else i


def to_epoch_ceil(dt: datetime) -> int:
    ts = dt.timestamp()
    i = int(ts)
    return i + 1 if i < ts else i


def from_epoch(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def ranges_overlap(ranges) -> bool:
    """Do any two local ranges (``time`` pairs) of one day overlap? An end of ``time(0)`` is midnight at
    the end of the day; touching ranges (09:00–12:00 and 12:00–17:00) do not overlap. Weekly hours and date
    overrides follow this rule in the config file and in the admin."""
    spans = sorted(
        (s.hour * 60 + s.minute, 1440 if e == time(0) else e.hour * 60 + e.minute) for s, e in ranges
    )
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
