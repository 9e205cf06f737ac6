"""Constraints that live in the database: they hold even when the application's checks are bypassed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from booking.models import Booking, BookingHost, MeetingType
from calendars.models import BusyInterval, DateOverride, TimeOff, WorkingHours
from routing.models import Pool, PoolMember, Rep, RepSkill

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


@pytest.fixture
def rep():
    return Rep.objects.create(name="Ana", email="ana@x.example", timezone="Europe/Berlin")


@pytest.fixture
def pool():
    return Pool.objects.create(name="P", slug="p", strategy="round_robin")


@pytest.fixture
def meeting_type(pool):
    return MeetingType.objects.create(slug="m", title="M", duration_minutes=30, pool=pool)


def violates(make) -> bool:
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False


def test_pool_member_weight_must_be_positive(rep, pool):
    assert violates(lambda: PoolMember.objects.create(pool=pool, rep=rep, weight=0))
    assert violates(lambda: PoolMember.objects.create(pool=pool, rep=rep, weight=-1))
    assert not violates(lambda: PoolMember.objects.create(pool=pool, rep=rep, weight=0.5))
    assert violates(lambda: PoolMember.objects.create(pool=pool, rep=rep))  # one membership per rep


def test_unique_slugs_and_emails(rep, pool, meeting_type):
    assert violates(lambda: Pool.objects.create(name="Q", slug="p", strategy="ranked"))
    assert violates(lambda: MeetingType.objects.create(slug="m", title="X", duration_minutes=30, pool=pool))
    assert violates(lambda: Rep.objects.create(name="A2", email="ana@x.example", timezone="UTC"))
    assert violates(
        lambda: RepSkill.objects.bulk_create([RepSkill(rep=rep, skill="a"), RepSkill(rep=rep, skill="a")])
    )
    assert violates(lambda: RepSkill.objects.create(rep=rep, skill="b", level=11))


def test_time_ranges_end_after_start(rep):
    nine, five = dt.time(9), dt.time(17)
    assert violates(lambda: WorkingHours.objects.create(rep=rep, weekday=0, start=five, end=nine))
    assert violates(lambda: WorkingHours.objects.create(rep=rep, weekday=0, start=nine, end=nine))
    assert not violates(lambda: WorkingHours.objects.create(rep=rep, weekday=0, start=five, end=dt.time(0)))
    day = dt.date(2026, 3, 3)
    assert violates(lambda: DateOverride.objects.create(rep=rep, date=day, start=nine, end=None))
    assert violates(lambda: DateOverride.objects.create(rep=rep, date=day, start=five, end=nine))
    assert not violates(lambda: DateOverride.objects.create(rep=rep, date=day))  # day off
    assert violates(lambda: TimeOff.objects.create(rep=rep, start=T0, end=T0))
    assert violates(lambda: BusyInterval.objects.create(rep=rep, start=T0 + H, end=T0))
    assert not violates(lambda: BusyInterval.objects.create(rep=rep, start=T0, end=T0 + H))


def test_meeting_type_checks(pool):
    def make(**kw):
        return lambda: MeetingType.objects.create(
            **{"slug": "x", "title": "X", "duration_minutes": 30, "pool": pool, **kw}
        )

    assert violates(make(slot_interval_minutes=7))
    assert violates(make(duration_minutes=0))
    assert violates(make(horizon_days=0))


def test_booking_and_host_ranges(rep, pool, meeting_type):
    def booking(start, end, token):
        return Booking.objects.create(
            meeting_type=meeting_type,
            pool=pool,
            start=start,
            end=end,
            prospect_name="P",
            prospect_email="p@x.example",
            prospect_timezone="UTC",
            manage_token_hash=token,
        )

    assert violates(lambda: booking(T0, T0, "a"))
    ok = booking(T0, T0 + H, "b")
    assert violates(lambda: booking(T0, T0 + H, "b"))  # the token hash is unique
    assert violates(lambda: BookingHost.objects.create(booking=ok, rep=rep, blocked_start=T0, blocked_end=T0))


def test_str_is_readable(rep, pool, meeting_type):
    member = PoolMember.objects.create(pool=pool, rep=rep, role="ae")
    assert str(rep) == "Ana <ana@x.example>"
    assert str(member) == "Ana in P as ae"
    assert str(meeting_type) == "M (30 min)"
    assert str(WorkingHours(rep=rep, weekday=0, start=dt.time(9), end=dt.time(17))) == "Monday 09:00–17:00"
