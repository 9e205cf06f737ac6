"""One member's free start instants: the slot-grid rules, computed arithmetically in epoch seconds.

A start instant ``s`` is free for member ``m`` (rep ``r``) for meeting type M (duration d, slot interval i,
buffers bb/ba, minimum notice n, horizon h days) iff all of:

1. ``m`` and ``r`` are active and ``r`` has working hours at all;
2. the local wall-clock time of ``s`` in ``r``'s zone is a whole multiple of i minutes after local midnight
   (wall clock: on a DST day 03:00 counts as 180 minutes after midnight);
3. ``[s, s + d)`` lies inside one working window. Working windows are, for each local date, that date's
   override ranges if it has an override (an empty override is a day off), else the weekday's ranges,
   converted to UTC by ``localtime`` (gap → moved forward, overlap → first occurrence, ``time(0)`` as an end
   → midnight ending the day), merged where they touch, minus time off;
4. ``[s − bb, s + d + ba)`` overlaps none of ``r.busy`` (half-open: touching is not overlapping);
5. ``now + n ≤ s < now + h days`` (absolute UTC arithmetic);
6. neither the rep's daily cap (``RepSchedule.daily_cap`` vs ``meetings_per_local_date``) nor the member's
   pool cap (``MemberState.daily_cap`` vs ``pool_meetings_per_local_date``) is reached on ``s``'s local date
   (reached = held ≥ cap; a cap of 0 blocks every day).

How it is fast: busy intervals become "blocked start" ranges ``(b0 − d − ba, b1 + bb)`` once, working windows
become "allowed start" ranges ``[w0, w1 − d]``; one sorted sweep subtracts the first from the second and grid
points are generated with ``range`` inside each remaining range, per constant-UTC-offset piece and local day.
Instants are whole seconds: interval starts are floored and ends ceiled, which is exact for whole-second
starts (and grid starts are whole minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from routing.core import reasons
from routing.core.intervals import Span, covers, merge, overlaps, subtract
from routing.core.localtime import (
    DAY,
    day_number,
    local_to_epoch,
    offset_at,
    seconds_of,
    segments_for,
    to_epoch_ceil,
    to_epoch_floor,
    weekday_of,
)
from routing.core.types import Interval, MeetingSpec, MemberState, RepSchedule


@dataclass(frozen=True, slots=True)
class Request:
    """A meeting type evaluated at a moment ``now``: the bounds every candidate start must respect."""

    meeting: MeetingSpec
    now: datetime  # UTC
    earliest: int  # first allowed start, epoch seconds (now + notice, rounded up)
    latest: int  # first start past the horizon, epoch seconds (exclusive)
    duration: int
    step: int
    before: int
    after: int

    @classmethod
    def build(cls, meeting: MeetingSpec, now: datetime) -> Request:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if meeting.duration_minutes <= 0 or meeting.slot_interval_minutes <= 0:
            raise ValueError("duration and slot interval must be positive")
        base = to_epoch_ceil(now)
        return cls(
            meeting=meeting,
            now=now.astimezone(UTC),
            earliest=base + meeting.minimum_notice_minutes * 60,
            latest=base + meeting.horizon_days * DAY,
            duration=meeting.duration_minutes * 60,
            step=meeting.slot_interval_minutes * 60,
            before=meeting.buffer_before_minutes * 60,
            after=meeting.buffer_after_minutes * 60,
        )


def has_working_hours(rep: RepSchedule) -> bool:
    return any(rep.weekly_hours.values()) or any(rep.date_overrides.values())


def working_windows(rep: RepSchedule, lo: int, hi: int) -> list[Span]:
    """Merged working windows (time off NOT removed) of every local date that can meet ``[lo, hi)``."""
    zone, weekly = rep.timezone, rep.weekly_hours
    overrides = {day_number(d): r for d, r in rep.date_overrides.items()} if rep.date_overrides else {}
    spans: list[Span] = []
    for day in range(lo // DAY - 2, (hi - 1) // DAY + 2):
        ranges = overrides.get(day) if day in overrides else weekly.get(weekday_of(day), ())
        if ranges and local_to_epoch(zone, day, 0) == local_to_epoch(zone, day + 1, 0):
            continue  # a date the zone skipped (Pacific/Apia, 2011-12-30): its hours never happened
        for a, b in ranges:
            end = seconds_of(b) or DAY
            start = seconds_of(a)
            if end > start:
                spans.append((local_to_epoch(zone, day, start), local_to_epoch(zone, day, end)))
    return merge(spans)


def within_working_hours(rep: RepSchedule, start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` lies inside one of the rep's working windows (their weekly hours, or that
    local date's override; time off and busy time not considered)."""
    lo, hi = to_epoch_floor(start), to_epoch_ceil(end)
    return covers(working_windows(rep, lo, hi), lo, hi)


# ``epoch_spans`` results by the identity of the (immutable) interval tuple: a rep's busy tuple is asked for
# many times while it does not change (every candidate start of a slot page, every lead of a simulation).
# Each entry holds its tuple, so an id is never reused while cached. The cache is bounded by the number of
# intervals it keeps alive (about 150 bytes each with their spans: ~15 MB at the bound) and emptied when full.
_SPANS: dict[int, tuple[tuple[Interval, ...], list[Span]]] = {}
_SPANS_MAX_INTERVALS = 100_000
_spans_held = 0


def epoch_spans(intervals: tuple[Interval, ...]) -> list[Span]:
    """Merged ``[floor(start), ceil(end))`` epoch-second spans of aware intervals (inlined: the hot path).
    The list may be shared between callers: never modify it."""
    global _spans_held
    hit = _SPANS.get(id(intervals))
    if hit is not None and hit[0] is intervals:
        return hit[1]
    spans = []
    for iv in intervals:
        a, b = iv.start.timestamp(), iv.end.timestamp()
        ia, ib = int(a), int(b)
        spans.append((ia - (ia > a), ib + (ib < b)))
    merged = merge(spans)
    if isinstance(intervals, tuple) and len(intervals) > 8:  # small ones are cheaper to redo than to cache
        if _spans_held + len(intervals) > _SPANS_MAX_INTERVALS:
            _SPANS.clear()
            _spans_held = 0
        _SPANS[id(intervals)] = (intervals, merged)
        _spans_held += len(intervals)
    return merged


def spans_cache_clear() -> None:
    global _spans_held
    _SPANS.clear()
    _spans_held = 0


def time_off_spans(rep: RepSchedule) -> list[Span]:
    return epoch_spans(rep.time_off)


def busy_spans(rep: RepSchedule) -> list[Span]:
    return epoch_spans(rep.busy)


def _capped(held: dict, cap: int | None) -> set[int]:
    if cap is None:
        return set()
    return {day_number(d) for d, n in held.items() if n >= cap}


def capped_days(member: MemberState) -> set[int] | None:
    """Local day numbers on which a cap is reached; ``None`` means every day (a cap of 0)."""
    rep = member.rep
    if any(cap is not None and cap <= 0 for cap in (rep.daily_cap, member.daily_cap)):
        return None
    return _capped(rep.meetings_per_local_date, rep.daily_cap) | _capped(
        member.pool_meetings_per_local_date, member.daily_cap
    )


def grid_starts(zone: str, spans: list[Span], step: int, capped: set[int]) -> list[int]:
    """Grid points inside sorted start ranges ``spans``, skipping capped local days; ascending, unique."""
    out: list[int] = []
    if not spans:
        return out
    segs = segments_for(zone, spans[0][0], spans[-1][1])
    i, nseg = 0, len(segs)
    for a, b in spans:
        while segs[i][1] <= a:
            i += 1
        k = i
        while k < nseg and segs[k][0] < b:
            s0, s1, off = segs[k]
            local_lo = (a if a > s0 else s0) + off
            local_hi = (b if b < s1 else s1) + off
            day = local_lo // DAY
            while day * DAY < local_hi:
                if day not in capped:
                    base = day * DAY
                    first = local_lo if local_lo > base else base
                    first += (base - first) % step
                    last = local_hi if local_hi < base + DAY else base + DAY
                    if first < last:
                        out.extend(range(first - off, last - off, step))
                day += 1
            k += 1
    return out


def free_epochs(member: MemberState, req: Request, lo: int, hi: int) -> list[int]:
    """Free starts of ``member`` in ``[lo, hi)`` (epoch seconds), ascending."""
    rep = member.rep
    if not (member.active and rep.active):
        return []
    lo, hi = max(lo, req.earliest), min(hi, req.latest)
    capped = capped_days(member)
    if lo >= hi or capped is None:
        return []
    d = req.duration
    windows = working_windows(rep, lo, hi + d)
    if windows and rep.time_off:
        windows = subtract(windows, time_off_spans(rep))
    starts: list[Span] = []
    for w0, w1 in windows:
        a, b = max(w0, lo), min(w1 - d + 1, hi)
        if a < b:
            starts.append((a, b))
    if starts and rep.busy:
        lead, trail = d + req.after - 1, req.before
        starts = subtract(starts, merge([(b0 - lead, b1 + trail) for b0, b1 in busy_spans(rep)]))
    return grid_starts(rep.timezone, starts, req.step, capped)


def _member_reason(member: MemberState) -> reasons.SkipReason | None:
    rep = member.rep
    if not (member.active and rep.active):
        return reasons.INACTIVE
    if not has_working_hours(rep):
        return reasons.NO_WORKING_HOURS
    return None


def _schedule_reason(
    member: MemberState, s: int, end: int, off: int, *, before: int = 0, after: int = 0
) -> reasons.SkipReason | None:
    """The schedule rules for ``[s, end)`` (epoch seconds; ``off``: the rep's UTC offset at ``s``)."""
    rep = member.rep
    if not covers(working_windows(rep, s, end), s, end):
        return reasons.OUTSIDE_WORKING_HOURS
    if rep.time_off and overlaps(time_off_spans(rep), s, end):
        return reasons.TIME_OFF
    capped = capped_days(member)
    if capped is None or (s + off) // DAY in capped:
        return reasons.CAP
    if rep.busy and overlaps(busy_spans(rep), s - before, end + after):
        return reasons.BUSY
    return None


def reason_at(
    member: MemberState, req: Request, start: datetime, *, booking_rules: bool = True
) -> reasons.SkipReason | None:
    """Why ``member`` is not free at ``start`` (first failing rule, see ``reasons``), or None if free.
    ``booking_rules=False`` leaves out the rules of offering a start (notice, horizon, grid): for a meeting
    already booked, given to another host."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    why = _member_reason(member)
    if why is not None:
        return why
    start = start.astimezone(UTC)
    meeting = req.meeting
    if booking_rules:
        if start < req.now + timedelta(minutes=meeting.minimum_notice_minutes):
            return reasons.NOTICE
        if start >= req.now + timedelta(days=meeting.horizon_days):
            return reasons.HORIZON
    s = to_epoch_floor(start)
    off = offset_at(member.rep.timezone, s)
    if booking_rules and (start.microsecond or (s + off) % DAY % req.step):
        return reasons.OFF_GRID
    return _schedule_reason(member, s, s + req.duration, off, before=req.before, after=req.after)


def reason_now(member: MemberState, now: datetime) -> reasons.SkipReason | None:
    """Why ``member`` cannot take a lead at the instant ``now`` (instant routing: the schedule rules of
    ``reason_at`` without notice, horizon, grid or meeting length), or None if they can."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    why = _member_reason(member)
    if why is not None:
        return why
    s = to_epoch_floor(now.astimezone(UTC))
    return _schedule_reason(member, s, s + 1, offset_at(member.rep.timezone, s))
