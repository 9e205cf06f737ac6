"""A pool's roster (members and weekly hours, ``routing.rosters``) is kept between requests on PostgreSQL
and used only while its rows' version is unchanged: every way of changing those rows is seen by the next
load, a roster built in a rolled-back transaction is never used, and with the version check switched off
the same tests see stale rows (so they can fail)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction

from calendars.models import WorkingHours
from routing import rosters
from routing.core import Interval
from routing.models import PoolMember, Rep
from routing.selectors import load_pool_calendars
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.conftest import on_postgres

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
WINDOW = Interval(NOW + 24 * H, NOW + 25 * H)


@pytest.fixture
def builds(monkeypatch):
    """The pools whose roster was built, in order."""
    built = []
    original = rosters.build

    def spy(pool):
        built.append(pool.pk)
        return original(pool)

    monkeypatch.setattr(rosters, "build", spy)
    return built


def load(pool, meeting_type):
    calendars = load_pool_calendars(pool, meeting_type, now=NOW, window=WINDOW)
    return dict(calendars.schedules), calendars


def seen(pool, meeting_type) -> dict:
    """What a load says of each member: name, zone, active, cap and Monday's hours of its schedule, and its
    member row's rank, weight, role, active and cap."""
    schedules, calendars = load(pool, meeting_type)
    rows = {m.rep_id: (m.rank, m.weight, m.role, m.active, m.daily_cap) for m in calendars.members}
    return {
        rid: (s.name, s.timezone, s.active, s.daily_cap, s.weekly_hours.get(0), rows[rid])
        for rid, s in schedules.items()
    }


def test_a_roster_is_kept_on_postgresql_only(builds):
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool)
    first, calendars = load(pool, meeting_type)
    second, again = load(pool, meeting_type)
    assert first == second
    assert [m.rep_id for m in calendars.members] == [ana.pk, ben.pk]
    if on_postgres():
        assert builds == [pool.pk]  # the second load used the kept roster
        assert again.members is calendars.members
        assert rosters.kept(pool) is not None
    else:
        assert builds == [pool.pk, pool.pk]
        assert rosters.kept(pool) is None


def _rep_by_orm(ana, ben, other):
    Rep.objects.filter(pk=ana.pk).update(name="Ana B.")


def _rep_saved(ana, ben, other):
    ana.timezone = "America/New_York"
    ana.save()


def _rep_inactive_raw(ana, ben, other):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE routing_rep SET active = false, daily_cap = 3 WHERE id = %s", [ana.pk])


def _member_inactive(ana, ben, other):
    PoolMember.objects.filter(rep=ana).update(active=False)


def _member_added(ana, ben, other):
    PoolMember.objects.create(pool=ana.memberships.get().pool, rep=other, rank=5)


def _member_moved_in(ana, ben, other):
    elsewhere = make_pool("first_available", [other])
    PoolMember.objects.filter(pool=elsewhere).update(pool=ana.memberships.get().pool)


def _member_removed(ana, ben, other):
    PoolMember.objects.filter(rep=ben).delete()


def _hours_updated(ana, ben, other):
    WorkingHours.objects.filter(rep=ana, weekday=0).update(start=dt.time(10))


def _hours_added(ana, ben, other):
    WorkingHours.objects.create(rep=ana, weekday=0, start=dt.time(18), end=dt.time(19))


def _hours_deleted_raw(ana, ben, other):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM calendars_workinghours WHERE rep_id = %s AND weekday = 0", [ben.pk])


def _hours_replaced_alike(ana, ben, other):  # deleted and written again with the same values: still reloaded
    WorkingHours.objects.filter(rep=ana, weekday=0).delete()
    WorkingHours.objects.create(rep=ana, weekday=0, start=dt.time(9), end=dt.time(17))


CHANGES = [
    _rep_by_orm,
    _rep_saved,
    _rep_inactive_raw,
    _member_inactive,
    _member_added,
    _member_moved_in,
    _member_removed,
    _hours_updated,
    _hours_added,
    _hours_deleted_raw,
]


def _fresh(pool, meeting_type) -> dict:
    """What a load without any kept roster sees."""
    rosters.forget()
    return seen(pool, meeting_type)


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_every_change_of_the_roster_rows_is_seen(change):
    ana, ben, other = make_rep("Ana"), make_rep("Ben"), make_rep("Other", hours=(7, 8))
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool)
    before = seen(pool, meeting_type)
    change(ana, ben, other)
    after = seen(pool, meeting_type)
    assert after != before
    assert after == _fresh(pool, meeting_type)
    PoolMember.objects.filter(pool=pool).update(rank=9)  # and the rebuilt roster is checked again
    assert seen(pool, meeting_type) == _fresh(pool, meeting_type)


@pytest.mark.postgres
def test_rows_written_again_alike_rebuild_the_roster(builds):
    ana = make_rep("Ana")
    pool = make_pool("first_available", [ana])
    meeting_type = make_meeting_type(pool)
    before = seen(pool, meeting_type)
    _hours_replaced_alike(ana, None, None)
    assert seen(pool, meeting_type) == before
    assert builds == [pool.pk, pool.pk]


@pytest.mark.postgres
@pytest.mark.parametrize("change", CHANGES[:3] + CHANGES[7:8], ids=lambda f: f.__name__.strip("_"))
def test_negative_control_without_the_version_check_a_change_is_missed(monkeypatch, change):
    """The check is what catches the changes above: with it switched off the kept roster is stale."""
    monkeypatch.setattr(rosters, "current", lambda roster, found: True)
    ana, ben, other = make_rep("Ana"), make_rep("Ben"), make_rep("Other")
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool)
    before = seen(pool, meeting_type)
    change(ana, ben, other)
    assert seen(pool, meeting_type) == before  # stale
    assert _fresh(pool, meeting_type) != before


@pytest.mark.postgres
def test_a_roster_built_in_a_rolled_back_transaction_is_never_used():
    ana = make_rep("Ana")
    pool = make_pool("first_available", [ana])
    meeting_type = make_meeting_type(pool)
    nine_to_five = seen(pool, meeting_type)[ana.pk][4]

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        WorkingHours.objects.filter(rep=ana, weekday=0).update(start=dt.time(10))
        assert seen(pool, meeting_type)[ana.pk][4] == ((dt.time(10), dt.time(17)),)  # kept, then undone
        raise Undo
    assert seen(pool, meeting_type)[ana.pk][4] == nine_to_five
    WorkingHours.objects.filter(rep=ana, weekday=0).update(start=dt.time(10))  # the same change, kept
    assert seen(pool, meeting_type)[ana.pk][4] == ((dt.time(10), dt.time(17)),)
    WorkingHours.objects.filter(rep=ana, weekday=0).update(start=dt.time(11))
    assert seen(pool, meeting_type)[ana.pk][4] == ((dt.time(11), dt.time(17)),)


@pytest.mark.postgres
def test_kept_rosters_are_bounded(monkeypatch):
    monkeypatch.setattr(rosters, "KEPT", 2)
    rosters.forget()
    pools = [make_pool("first_available", [make_rep()]) for _ in range(3)]
    for pool in pools:
        seen(pool, make_meeting_type(pool))
    assert [rosters.kept(p) is not None for p in pools] == [False, True, True]


def test_an_empty_pool_loads_and_is_kept_until_a_member_joins():
    pool = make_pool("first_available", [])
    meeting_type = make_meeting_type(pool)
    assert seen(pool, meeting_type) == {}
    assert seen(pool, meeting_type) == {}
    ana = make_rep("Ana")
    PoolMember.objects.create(pool=pool, rep=ana)
    assert list(seen(pool, meeting_type)) == [ana.pk]
