"""``booking.triggers``: host rows carry their booking's pool and status whatever writes them (SQLite and
PostgreSQL), and ``migrate`` leaves the triggers in place."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from booking import triggers
from booking.models import Booking, BookingHost
from booking.services import booking_cancel, booking_create
from routing import sqlwrites
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def copies(booking: Booking) -> set[tuple]:
    """(pool, status) as the host rows of ``booking`` hold them, read from the database."""
    return set(BookingHost.objects.filter(booking=booking).values_list("booking_pool_id", "booking_status"))


@pytest.fixture
def setup():
    reps = [make_rep(), make_rep()]
    pool = make_pool("first_available", reps)
    return reps, pool, make_meeting_type(pool)


def new_booking(meeting_type, pool, i: int = 0, status: str = "confirmed") -> Booking:
    start = NOW + dt.timedelta(days=1, hours=i)
    return Booking.objects.create(
        meeting_type=meeting_type,
        pool=pool,
        start=start,
        end=start + dt.timedelta(minutes=30),
        status=status,
        prospect_name="P",
        prospect_email="p@example.org",
        prospect_timezone="UTC",
        manage_token_hash=f"trigger-{i:056d}",
    )


def host(booking: Booking, rep, **kw) -> BookingHost:
    return BookingHost(booking=booking, rep=rep, blocked_start=booking.start, blocked_end=booking.end, **kw)


def test_the_triggers_are_installed():
    assert triggers.installed(connection) == triggers.NAMES[connection.vendor]


def test_every_insert_path_copies_pool_and_status(setup):
    reps, pool, meeting_type = setup
    a, b, c = (
        new_booking(meeting_type, pool, i, status)
        for i, status in enumerate(["confirmed", "no_show", "cancelled"])
    )
    host(a, reps[0]).save()  # the ORM, one row
    wrong = host(b, reps[0], booking_pool_id=-1, booking_status="wrong")  # a wrong copy is put right
    BookingHost.objects.bulk_create([wrong, host(b, reps[1])])  # the ORM, several rows
    sqlwrites.insert([host(c, reps[1])])  # the booking service's insert leaves the columns out
    assert copies(a) == {(pool.pk, "confirmed")}
    assert copies(b) == {(pool.pk, "no_show")}
    assert copies(c) == {(pool.pk, "cancelled")}


def test_a_booking_and_its_hosts_in_one_statement(setup):
    """The booking service's insert (``sqlwrites.insert_many``: booking, host rows and ledger entries in one
    statement on PostgreSQL) and its cancellation."""
    _, pool, meeting_type = setup
    start = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
    result = booking_create(
        meeting_type=meeting_type, start=start, name="Ada", email="ada@example.org", timezone="UTC", now=NOW
    )
    booking = Booking.objects.get(pk=result.body["id"])
    assert copies(booking) == {(pool.pk, "confirmed")}
    booking_cancel(token=result.body["manage_token"], reason="", now=NOW)
    assert copies(booking) == {(pool.pk, "cancelled")}


def test_status_and_pool_changes_reach_the_host_rows(setup):
    reps, pool, meeting_type = setup
    other = make_pool("first_available", reps)
    booking = new_booking(meeting_type, pool)
    BookingHost.objects.bulk_create([host(booking, reps[0]), host(booking, reps[1])])
    booking.status = "completed"
    booking.save()
    assert copies(booking) == {(pool.pk, "completed")}
    Booking.objects.filter(pk=booking.pk).update(status="no_show")
    assert copies(booking) == {(pool.pk, "no_show")}
    booking.status = "cancelled"
    Booking.objects.bulk_update([booking], ["status"])
    assert copies(booking) == {(pool.pk, "cancelled")}
    Booking.objects.filter(pk=booking.pk).update(pool=other)
    assert copies(booking) == {(other.pk, "cancelled")}
    with connection.cursor() as cursor:  # raw SQL too
        cursor.execute("UPDATE booking_booking SET status = 'confirmed' WHERE id = %s", [booking.pk])
    assert copies(booking) == {(other.pk, "confirmed")}


def test_saving_a_host_row_with_stale_copies_keeps_the_bookings(setup):
    reps, pool, meeting_type = setup
    booking = new_booking(meeting_type, pool)
    row = host(booking, reps[0])
    row.save()  # in memory the copies stay None (the application never reads them back)
    assert (row.booking_pool_id, row.booking_status) == (None, None)
    row.active = False
    row.save()  # an UPDATE of every column, the stale copies included
    BookingHost.objects.filter(pk=row.pk).update(booking_status="confirmed-not")
    assert copies(booking) == {(pool.pk, "confirmed")}


def test_the_backfill_and_migrate_put_back_what_is_missing(setup):
    """Migration 0009 fills existing rows; ``post_migrate`` re-creates triggers a table rebuild dropped."""
    from django.core.management import call_command

    reps, pool, meeting_type = setup
    booking = new_booking(meeting_type, pool, status="completed")
    host(booking, reps[0]).save()
    triggers.uninstall(connection)
    try:
        BookingHost.objects.update(booking_pool_id=None, booking_status=None)
        assert copies(booking) == {(None, None)}
        assert triggers.installed(connection) == set()
        with connection.cursor() as cursor:
            cursor.execute(triggers.BACKFILL)
        assert copies(booking) == {(pool.pk, "completed")}
    finally:
        call_command("migrate", verbosity=0)
    assert triggers.installed(connection) == triggers.NAMES[connection.vendor]
    Booking.objects.filter(pk=booking.pk).update(status="cancelled")
    assert copies(booking) == {(pool.pk, "cancelled")}


def test_post_migrate_leaves_a_database_before_migration_0009_alone(monkeypatch):
    """Unapplying 0009 drops the columns and the triggers; the ``post_migrate`` that follows must not put
    back triggers that would name missing columns (every host row insert would then fail)."""
    describe = connection.introspection.get_table_description

    def without_copies(cursor, table):
        return [c for c in describe(cursor, table) if c.name not in ("booking_pool_id", "booking_status")]

    triggers.uninstall(connection)
    try:
        monkeypatch.setattr(connection.introspection, "get_table_description", without_copies)
        triggers.on_post_migrate(sender=None, using="default")
        assert triggers.installed(connection) == set()
    finally:
        monkeypatch.undo()
        triggers.on_post_migrate(sender=None, using="default")
    assert triggers.installed(connection) == triggers.NAMES[connection.vendor]
