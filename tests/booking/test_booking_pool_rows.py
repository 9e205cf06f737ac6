"""The pool loaders read their rows in plain SQL (``routing.sqlrows``): what they load must be exactly what
the ORM reads — the same rows, the same Python types, timestamps aware in UTC — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from booking.models import Booking, BookingHost
from calendars.models import BusyInterval, DateOverride, TimeOff
from routing.core import Interval
from routing.selectors import load_pool_bookings, load_pool_calendars, load_pool_state
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
TOKENS = itertools.count(1)


def booking(meeting_type, pool, rep, start, *, active=True):
    made = Booking.objects.create(
        meeting_type=meeting_type,
        pool=pool,
        start=start,
        end=start + H / 2,
        prospect_name="P",
        prospect_email="p@example.org",
        prospect_timezone="UTC",
        manage_token_hash=f"{next(TOKENS):064d}",
    )
    BookingHost.objects.create(
        booking=made, rep=rep, blocked_start=start, blocked_end=start + H / 2, active=active, assigned_at=NOW
    )
    return made


def test_loaded_rows_equal_the_orm_rows_with_the_same_types():
    ana, ben = make_rep("Ana", daily_cap=4), make_rep("Ben", tz="America/New_York")  # ben: no cap
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool, buffer_before_minutes=10, buffer_after_minutes=5)
    other_pool = make_pool("first_available", [ana])
    window = Interval(NOW + 24 * H, NOW + 25 * H)
    day = (NOW + 24 * H).date()
    DateOverride.objects.create(rep=ana, date=day, start=dt.time(10), end=dt.time(12, 30))
    DateOverride.objects.create(rep=ben, date=day + dt.timedelta(days=1), start=None, end=None)  # a day off
    DateOverride.objects.create(rep=ana, date=day + dt.timedelta(days=9), start=dt.time(8), end=dt.time(9))
    TimeOff.objects.create(rep=ben, start=NOW + 20 * H, end=NOW + 30 * H)
    TimeOff.objects.create(rep=ben, start=NOW - 90 * H, end=NOW - 80 * H)  # outside the ±2 days
    inside = BusyInterval.objects.create(
        rep=ana, start=window.start - 5 * dt.timedelta(minutes=1), end=window.start
    )
    BusyInterval.objects.create(
        rep=ana,
        start=window.start - 20 * dt.timedelta(minutes=1),
        end=window.start - 10 * dt.timedelta(minutes=1),
    )  # ends at s − before
    near = booking(meeting_type, other_pool, ana, NOW + 25 * H)  # overlaps the last start + duration + after
    kept = booking(meeting_type, pool, ana, NOW + 26 * H)  # too late to overlap: counted, not busy
    booking(meeting_type, other_pool, ana, NOW + 27 * H)
    booking(meeting_type, pool, ben, NOW + 28 * H, active=False)  # cancelled: not busy
    moving = booking(meeting_type, pool, ben, NOW + 29 * H)
    booking(meeting_type, pool, ben, NOW + 30 * H)  # not busy near the window; ben has no cap to count for

    state = load_pool_state(pool, meeting_type, now=NOW, window=window, exclude_booking_id=moving.pk)
    by_rep = {m.rep.rep_id: m for m in state.spec.members}
    a, b = by_rep[ana.pk].rep, by_rep[ben.pk].rep
    assert a.weekly_hours == {d: ((dt.time(9), dt.time(17)),) for d in range(5)}
    assert all(isinstance(t, dt.time) for ranges in a.weekly_hours.values() for r in ranges for t in r)
    assert a.date_overrides == {day: ((dt.time(10), dt.time(12, 30)),)}
    assert b.date_overrides == {day + dt.timedelta(days=1): ()}
    assert all(isinstance(d, dt.date) for d in a.date_overrides)
    assert all(isinstance(t, dt.time) for ranges in a.date_overrides.values() for r in ranges for t in r)
    assert b.time_off == (Interval(NOW + 20 * H, NOW + 30 * H),)
    assert a.busy == (
        Interval(inside.start, inside.end),
        Interval(near.start, near.end),  # another pool's booking blocks the rep too
    )
    assert b.busy == ()  # the inactive host row, the excluded booking and one far from the window
    stamps = [*a.busy, *b.time_off]
    assert all(
        i.start.utcoffset() == dt.timedelta(0) and i.end.utcoffset() == dt.timedelta(0) for i in stamps
    )
    berlin = (kept.start.astimezone(dt.timezone(dt.timedelta(hours=1)))).date()
    assert a.meetings_per_local_date == {berlin: 3}  # near, kept and the other pool's
    assert by_rep[ana.pk].pool_meetings_per_local_date == {berlin: 1}
    assert b.meetings_per_local_date == {} and by_rep[ben.pk].pool_meetings_per_local_date == {}
    # without a meeting type (the simulator) every host row of the window is busy time and every rep counted
    wide = load_pool_state(pool, None, now=NOW, window=window, exclude_booking_id=moving.pk)
    wide_by_rep = {m.rep.rep_id: m for m in wide.spec.members}
    assert Interval(kept.start, kept.end) in wide_by_rep[ana.pk].rep.busy
    new_york = (NOW + 30 * H).astimezone(dt.timezone(dt.timedelta(hours=-5))).date()
    assert wide_by_rep[ben.pk].rep.meetings_per_local_date == {new_york: 1}
    assert wide_by_rep[ben.pk].pool_meetings_per_local_date == {new_york: 1}
    # the same rows as the ORM reads them
    orm_busy = sorted(
        (r.start, r.end)
        for r in BusyInterval.objects.filter(rep=ana, end__gt=window.start - dt.timedelta(minutes=10))
    )
    assert [(i.start, i.end) for i in a.busy if i.start < window.end] == orm_busy


def test_daily_caps_count_bookings_far_from_the_asked_starts():
    from booking.selectors import slots_in_window
    from routing.models import PoolMember

    ana, ben = make_rep("Ana", daily_cap=1), make_rep("Ben")
    capped_rep = make_meeting_type(make_pool("ranked", [ana]))
    member_pool = make_pool("ranked", [ben])
    PoolMember.objects.filter(pool=member_pool).update(daily_cap=1)
    capped_member = make_meeting_type(member_pool)
    other = make_meeting_type(make_pool("ranked", [ben]))
    afternoon = Interval(NOW + 30 * H, NOW + 32 * H)  # Tuesday 14:00-16:00 in Berlin
    assert slots_in_window(capped_rep, afternoon, now=NOW) and slots_in_window(
        capped_member, afternoon, now=NOW
    )
    booking(capped_rep, capped_rep.pool, ana, NOW + 25 * H)  # Tuesday 09:00 in Berlin, hours before
    booking(other, other.pool, ben, NOW + 25 * H)  # another pool: not the member's pool cap
    assert slots_in_window(capped_rep, afternoon, now=NOW) == []
    assert slots_in_window(capped_member, afternoon, now=NOW)
    booking(capped_member, member_pool, ben, NOW + 26 * H)
    assert slots_in_window(capped_member, afternoon, now=NOW) == []


def test_the_probe_and_taken_find_members_booked_over_a_range_before_and_under_the_locks():
    """A booking asks phase one which candidates already host an active booking overlapping its buffered
    range (the fast fail before the locks), and phase two, with ``taken``, stops before the ledger when all
    of them do (a booking that waited for its locks while another took the slot)."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool)
    other_pool = make_pool("first_available", [ana])
    booking(meeting_type, other_pool, ana, NOW + 25 * H)  # another pool's booking blocks ana too
    booking(meeting_type, pool, ben, NOW + 25 * H, active=False)  # cancelled: ben is free
    booking(meeting_type, pool, ben, NOW + 27 * H)
    cases = [
        ((NOW + 25 * H, NOW + 25 * H + H / 2), {ana.pk}),
        ((NOW + 24 * H, NOW + 25 * H), set()),  # ends where ana's booking starts
        ((NOW + 25 * H + H / 2, NOW + 27 * H + H / 4), {ben.pk}),  # starts where ana's ends
        ((NOW + 25 * H, NOW + 28 * H), {ana.pk, ben.pk}),
    ]
    for (lo, hi), expected in cases:
        orm = set(
            BookingHost.objects.filter(
                rep__in=[ana, ben], active=True, blocked_start__lt=hi, blocked_end__gt=lo
            ).values_list("rep_id", flat=True)
        )
        assert orm == expected
        window = Interval(lo, hi)
        calendars = load_pool_calendars(pool, meeting_type, now=NOW, window=window, probe=(lo, hi))
        assert calendars.booked == expected, (lo, hi)
        state = load_pool_bookings(calendars, now=NOW, taken=(lo, hi))
        assert (state is None) == (expected == {ana.pk, ben.pk}), (lo, hi)
        if state is not None:
            assert load_pool_bookings(calendars, now=NOW) == state
    window = Interval(NOW + 24 * H, NOW + 28 * H)
    assert load_pool_calendars(pool, meeting_type, now=NOW, window=window).booked == frozenset()
