"""Test helpers: builders and an independent brute-force availability checker.

The oracle re-derives the slot rules minute by minute with plain ``datetime`` arithmetic. It shares no code
with ``routing.core`` (it does not use dateutil or ``fold`` either): a local wall time is placed by trying
every UTC offset the zone uses nearby and keeping the earliest instant whose wall clock matches; if none
matches (a DST gap) the offset in force before the gap is used, which moves the time forward by the gap.
It assumes whole-minute inputs (busy, time off, working hours), which the property tests generate.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from routing.core import MeetingSpec, MemberState, RepSchedule

MINUTE = timedelta(minutes=1)
WEEKDAYS = {d: ((time(9), time(17)),) for d in range(5)}
ALL_DAY = {d: ((time(0), time(0)),) for d in range(7)}


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, zone: str = "UTC") -> datetime:
    """An instant given as a wall-clock time in ``zone`` (unambiguous times only), returned in UTC."""
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def rep(rep_id: int = 1, zone: str = "UTC", hours=None, **kw) -> RepSchedule:
    return RepSchedule(rep_id=rep_id, timezone=zone, weekly_hours=WEEKDAYS if hours is None else hours, **kw)


def member(rep_or_id=1, **kw) -> MemberState:
    r = rep(rep_or_id) if isinstance(rep_or_id, int) else rep_or_id
    return MemberState(rep=r, **kw)


# --------------------------------------------------------------------------------------------- the oracle


@lru_cache(maxsize=100_000)
def oracle_instant(zone_name: str, d: date, t: time, end_of_day: bool = False) -> datetime:
    zone = ZoneInfo(zone_name)
    naive = datetime.combine(d + timedelta(days=1) if end_of_day else d, t)
    probe = naive.replace(tzinfo=UTC)
    offsets = {(probe + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-40, 41)}
    matches = []
    for off in offsets:
        cand = (naive - off).replace(tzinfo=UTC)
        if cand.astimezone(zone).replace(tzinfo=None) == naive:
            matches.append(cand)
    if matches:
        return min(matches)
    before = (probe - timedelta(hours=30)).astimezone(zone).utcoffset()
    return (naive - before).replace(tzinfo=UTC)


def oracle_windows(r: RepSchedule, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    spans = []
    d = lo.date() - timedelta(days=3)
    while d <= hi.date() + timedelta(days=2):
        ranges = r.date_overrides[d] if d in r.date_overrides else r.weekly_hours.get(d.weekday(), ())
        for a, b in ranges:
            start = oracle_instant(r.timezone, d, a)
            end = oracle_instant(r.timezone, d, b, end_of_day=(b == time(0)))
            if end > start:
                spans.append((start, end))
        d += timedelta(days=1)
    return spans


class MinuteMap:
    """Per-minute facts for one rep over ``[lo, hi)``: working (and not on time off) and busy."""

    def __init__(self, r: RepSchedule, lo: datetime, hi: datetime):
        self.lo = lo
        n = int((hi - lo) / MINUTE)
        self.ok = [False] * n
        self.busy = [False] * n
        for a, b in oracle_windows(r, lo, hi):
            self._mark(self.ok, a, b, True)
        for iv in r.time_off:
            self._mark(self.ok, iv.start, iv.end, False)
        for iv in r.busy:
            self._mark(self.busy, iv.start, iv.end, True)

    def _mark(self, flags: list[bool], a: datetime, b: datetime, value: bool) -> None:
        """Set every minute ``u`` with ``a <= u < b``."""
        first = max(0, -((self.lo - a) // MINUTE))  # ceil((a - lo) / 1 min)
        last = min(len(flags), -((self.lo - b) // MINUTE))
        for k in range(first, last):
            flags[k] = value

    def index(self, u: datetime) -> int:
        return int((u - self.lo) / MINUTE)


def oracle_free_starts(
    m: MemberState, meeting: MeetingSpec, now: datetime, lo: datetime, hi: datetime
) -> list[datetime]:
    """Every start in ``[lo, hi)`` (whole minutes) at which the member is free, checked minute by minute."""
    r = m.rep
    if not (m.active and r.active):
        return []
    zone = ZoneInfo(r.timezone)
    d, bb, ba = meeting.duration_minutes, meeting.buffer_before_minutes, meeting.buffer_after_minutes
    earliest = now + timedelta(minutes=meeting.minimum_notice_minutes)
    latest = now + timedelta(days=meeting.horizon_days)
    first = lo.replace(second=0, microsecond=0)
    if first < lo:
        first += MINUTE
    mm = MinuteMap(r, first - timedelta(minutes=bb + 1), hi + timedelta(minutes=d + ba + 1))
    out = []
    s = first
    while s < hi:
        local = s.astimezone(zone)
        if (local.hour * 60 + local.minute) % meeting.slot_interval_minutes == 0 and earliest <= s < latest:
            i = mm.index(s)
            if (
                all(mm.ok[i : i + d])
                and not any(mm.busy[i - bb : i + d + ba])
                and not _capped(m, local.date())
            ):
                out.append(s)
        s += MINUTE
    return out


def _capped(m: MemberState, d: date) -> bool:
    r = m.rep
    if r.daily_cap is not None and r.meetings_per_local_date.get(d, 0) >= r.daily_cap:
        return True
    return m.daily_cap is not None and m.pool_meetings_per_local_date.get(d, 0) >= m.daily_cap
