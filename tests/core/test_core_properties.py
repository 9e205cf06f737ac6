"""Hypothesis properties, checked against the independent minute-by-minute oracle in ``core_oracle``.

Inputs: 1–4 members in America/New_York, Europe/Berlin, Asia/Kolkata, Australia/Lord_Howe or Pacific/Chatham,
random weekly hours (including DST-gap and ambiguous times and ranges ending at midnight), overrides and days
off, busy times, time off, caps, and meeting types, around DST transition dates.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core_oracle import oracle_free_starts
from dateutil.tz import datetime_exists
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.core import (
    Interval,
    MeetingSpec,
    MemberState,
    NoHostAvailable,
    PoolSpec,
    RepSchedule,
    assign,
    free_starts,
    next_up_order,
    offered_slots,
    why_not_free,
)
from routing.core.ledger import rank_key

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]
# (zone, local date of a DST transition in that zone): most reps of an example share the example's zone
TRANSITIONS = [
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("Europe/Berlin", date(2026, 3, 29)),
    ("Europe/Berlin", date(2026, 10, 25)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("Pacific/Chatham", date(2026, 4, 5)),
    ("Pacific/Chatham", date(2026, 9, 27)),
    ("Asia/Kolkata", date(2026, 6, 15)),
]
# CORE_HYPOTHESIS_EXAMPLES=2000 for a long soak run
EXAMPLES = int(os.environ.get("CORE_HYPOTHESIS_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def clock(minutes: int) -> time:
    return time(0) if minutes >= 1440 else time(minutes // 60, minutes % 60)


# starts: any quarter hour, often inside DST gaps/overlaps (01:00–03:00) or at 09:00; lengths 30 min … 24 h
in_transition = st.sampled_from([60, 90, 105, 120, 135, 150, 165, 180, 540])
starts = st.integers(0, 95).map(lambda q: q * 15) | in_transition
lengths = st.sampled_from([30, 60, 120, 240, 360, 480, 600, 720, 1440])
local_range = st.builds(lambda start, length: (clock(start), clock(start + length)), starts, lengths)
ranges = st.lists(local_range, max_size=2).map(tuple)
some_ranges = st.lists(local_range, min_size=1, max_size=2).map(tuple)
caps = st.sampled_from([None, None, None, None, 0, 1, 2, 3])


@st.composite
def scenarios(draw):
    theme, anchor = draw(st.sampled_from(TRANSITIONS))
    base = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)

    def instant(lo_h, hi_h):
        # often on a quarter hour, so that busy edges touch grid starts and buffers
        unit = draw(st.sampled_from([1, 15, 15]))
        return base + timedelta(minutes=unit * draw(st.integers(lo_h * 60 // unit, hi_h * 60 // unit)))

    def spans(max_size, max_len):
        out = []
        for _ in range(draw(st.integers(0, max_size))):
            start = instant(-16, 36)
            length = draw(st.sampled_from([15, 30, 60]) | st.integers(1, max_len))
            out.append(Interval(start, start + timedelta(minutes=length)))
        return tuple(out)

    def near_days():
        return [anchor + timedelta(days=k) for k in sorted(draw(st.sets(st.integers(-1, 2))))]

    def held():
        return {d: draw(st.integers(0, 2)) for d in near_days()}

    members = []
    for rep_id in range(1, draw(st.integers(1, 4)) + 1):
        weekday, weekend = draw(some_ranges), draw(some_ranges)
        overrides = {d: draw(ranges) for d in near_days()}
        if draw(st.booleans()):  # the transition day itself, starting inside or near the gap/overlap
            start = draw(in_transition)
            overrides[anchor] = ((clock(start), clock(start + draw(st.sampled_from([60, 240, 1440])))),)
        rep = RepSchedule(
            rep_id=rep_id,
            timezone=draw(st.sampled_from([theme] * 3 + ZONES)),
            weekly_hours={d: weekday if d < 5 else weekend for d in range(7)},
            date_overrides=overrides,
            time_off=spans(1, 600),
            busy=spans(12, 180),
            active=draw(st.sampled_from([True] * 19 + [False])),
            daily_cap=draw(caps),
            meetings_per_local_date=held(),
        )
        members.append(
            MemberState(
                rep=rep,
                rank=draw(st.integers(0, 3)),
                weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
                role=draw(st.sampled_from(["ae", "se"])),
                active=draw(st.sampled_from([True] * 19 + [False])),
                daily_cap=draw(caps),
                pool_meetings_per_local_date=held(),
                count=float(draw(st.integers(0, 5))),
                last_assigned=draw(st.none() | st.integers(1, 99).map(lambda h: base - timedelta(hours=h))),
            )
        )
    meeting = MeetingSpec(
        duration_minutes=draw(st.sampled_from([15, 20, 30, 45, 60, 90])),
        slot_interval_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 50, 60])),
        buffer_before_minutes=draw(st.sampled_from([0, 5, 10, 15])),
        buffer_after_minutes=draw(st.sampled_from([0, 5, 10, 15])),
        minimum_notice_minutes=draw(st.sampled_from([0, 30, 60, 180])),
        horizon_days=draw(st.integers(1, 3)),
    )
    now = instant(-20, 6) + timedelta(seconds=draw(st.sampled_from([0, 0, 0, 1, 59])))
    lead = draw(st.sampled_from([-120, 0, 0, 45, 180]) | st.integers(-360, 720))
    start = now + timedelta(minutes=lead)
    length = draw(st.sampled_from([360, 720, 1440, 2160]) | st.integers(60, 36 * 60))
    window = Interval(start, start + timedelta(minutes=length))
    return tuple(members), meeting, now, window


def oracle(members, meeting, now, window):
    return {m.rep_id: set(oracle_free_starts(m, meeting, now, window.start, window.end)) for m in members}


def on_grid(local: datetime, interval: int) -> bool:
    return (local.hour * 60 + local.minute) % interval == 0


def by_rank(members):
    return sorted(members, key=rank_key)


def sample(items, k=12):
    items = sorted(items)
    return items if len(items) <= k else [items[i * len(items) // k] for i in range(k)]


@SETTINGS
@given(scenarios())
def test_free_starts_and_why_not_free_match_the_oracle(case):
    members, meeting, now, window = case
    expected = oracle(members, meeting, now, window)
    for m in members:
        got = free_starts(m, meeting, now=now, window=window)
        assert got == sorted(expected[m.rep_id])
        zone = ZoneInfo(m.rep.timezone)
        for s in got:  # never at a nonexistent local time
            assert datetime_exists(s.astimezone(zone).replace(tzinfo=None), tz=zone)
        minutes = (
            window.start.replace(second=0, microsecond=0) + timedelta(minutes=k)
            for k in range(1, int((window.end - window.start).total_seconds() // 60))
        )
        grid = [s for s in minutes if on_grid(s.astimezone(zone), meeting.slot_interval_minutes)]
        for s in sample(grid, 40):
            free = why_not_free(m, meeting, now=now, start=s) is None
            assert free == (s in expected[m.rep_id]), s


@SETTINGS
@given(scenarios())
def test_strategies_offer_and_assign_exactly_what_the_oracle_allows(case):
    members, meeting, now, window = case
    expected = oracle(members, meeting, now, window)
    union = set().union(*expected.values())

    def offered(strategy, **kw):
        return offered_slots(PoolSpec(strategy, members, **kw), meeting, now=now, window=window)

    # first_available and ranked offer exactly the union of the members' free starts
    assert offered("first_available") == sorted(union)
    assert offered("ranked") == sorted(union)
    for s in sample(union):
        free = [m for m in members if s in expected[m.rep_id]]
        for strategy, order in (("first_available", next_up_order), ("ranked", by_rank)):
            (host,) = assign(PoolSpec(strategy, members), meeting, now=now, start=s).hosts
            assert host.rep_id == order(free)[0].rep_id

    # group offers exactly the intersection over roles of each role's union
    roles = {m.role for m in members}
    by_role = {r: set().union(*(expected[m.rep_id] for m in members if m.role == r)) for r in roles}
    common = set.intersection(*by_role.values())
    assert offered("group") == sorted(common)
    for s in sample(common):
        hosts = assign(PoolSpec("group", members), meeting, now=now, start=s).hosts
        assert sorted(h.role for h in hosts) == sorted(roles)
        for h in hosts:
            free = [m for m in members if m.role == h.role and s in expected[m.rep_id]]
            assert h.rep_id == next_up_order(free)[0].rep_id
    for s in sample(union - common, 3):
        try:
            assign(PoolSpec("group", members), meeting, now=now, start=s)
            raise AssertionError("a group booking needs every role")
        except NoHostAvailable as err:
            assert err.record["hosts"] == []

    # round robin offers the window slots of the first next-up member with any free start in the horizon
    horizon_lo = now + timedelta(minutes=meeting.minimum_notice_minutes)
    horizon_hi = now + timedelta(days=meeting.horizon_days)
    rr = []
    for m in next_up_order(members):
        if oracle_free_starts(m, meeting, now, horizon_lo, horizon_hi):
            rr = sorted(expected[m.rep_id])
            break
    assert offered("round_robin") == rr


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_order(case, rnd: random.Random):
    members, meeting, now, window = case

    def shuffled(items):
        items = list(items)
        rnd.shuffle(items)
        return tuple(items)

    mixed = shuffled(
        replace(m, rep=replace(m.rep, busy=shuffled(m.rep.busy), time_off=shuffled(m.rep.time_off)))
        for m in members
    )
    for strategy in ("round_robin", "first_available", "ranked", "group"):
        a, b = PoolSpec(strategy, members), PoolSpec(strategy, mixed)
        slots = offered_slots(a, meeting, now=now, window=window)
        assert slots == offered_slots(b, meeting, now=now, window=window)
        for s in sample(slots, 3):
            assert assign(a, meeting, now=now, start=s) == assign(b, meeting, now=now, start=s)
