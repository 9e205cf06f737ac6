"""``booking.triggers``: host rows carry their booking's pool and status whatever writes them (SQLite and
PostgreSQL), and ``migrate`` leaves the triggers in place."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from booking import triggers
from booking.models import Booking, BookingHost, HostTally
from booking.services import booking_cancel, booking_create
from routing import sqlwrites
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db
TALLY_NAMES = {name for name in triggers.NAMES["postgresql"] | triggers.NAMES["sqlite"] if "tally" in name}


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


def tallies(pool) -> dict:
    """``pool``'s fairness tallies (``booking.triggers``): (kind, first day, rep, status) → n, non-zero."""
    rows = HostTally.objects.filter(pool_id=pool.pk).exclude(n=0)
    return {(t.kind, str(t.start), t.rep_id, t.status): t.n for t in rows}


def buckets(rep, status: str, day: str, week: str, month: str, n: int = 1) -> dict:
    keys = [("day", day), ("week", week), ("month", month), ("all", "1970-01-01")]
    return {(kind, first, rep.pk, status): n for kind, first in keys}


def test_a_host_row_counts_in_the_utc_buckets_of_its_assignment_and_follows_every_change(setup):
    reps, pool, meeting_type = setup
    other = make_pool("first_available", reps)
    booking = new_booking(meeting_type, pool)
    # 00:30 in Berlin on Monday 2 March is 23:30 UTC on Sunday 1 March: that day, the week from Monday 23
    # February, March
    at = dt.datetime(2026, 3, 2, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    row = host(booking, reps[0], assigned_at=at)
    row.save()
    sunday = buckets(reps[0], "confirmed", "2026-03-01", "2026-02-23", "2026-03-01")
    assert tallies(pool) == sunday
    row.save()  # an update that changes nothing counts nothing
    assert tallies(pool) == sunday
    Booking.objects.filter(pk=booking.pk).update(status="cancelled")  # the status, by the copy trigger
    assert tallies(pool) == buckets(reps[0], "cancelled", "2026-03-01", "2026-02-23", "2026-03-01")
    BookingHost.objects.filter(pk=row.pk).update(assigned_at=at + dt.timedelta(hours=1))  # Monday, in UTC
    monday = buckets(reps[0], "cancelled", "2026-03-02", "2026-03-02", "2026-03-01")
    assert tallies(pool) == monday
    BookingHost.objects.filter(pk=row.pk).update(rep=reps[1])
    assert tallies(pool) == buckets(reps[1], "cancelled", "2026-03-02", "2026-03-02", "2026-03-01")
    BookingHost.objects.filter(pk=row.pk).update(rep=reps[0])
    second = host(booking, reps[1], assigned_at=at + dt.timedelta(hours=1))
    sqlwrites.insert([second])  # the booking service's insert
    assert tallies(pool) == {
        **monday,
        **buckets(reps[1], "cancelled", "2026-03-02", "2026-03-02", "2026-03-01"),
    }
    BookingHost.objects.filter(pk=row.pk).update(released=BookingHost.Released.REASSIGNED)  # moved away
    assert tallies(pool) == buckets(reps[1], "cancelled", "2026-03-02", "2026-03-02", "2026-03-01")
    Booking.objects.filter(pk=booking.pk).update(pool=other)
    assert tallies(pool) == {}
    assert tallies(other) == buckets(reps[1], "cancelled", "2026-03-02", "2026-03-02", "2026-03-01")
    booking.delete()
    assert tallies(other) == {}


def test_tallies_count_many_rows_and_the_check_after_every_test_sees_a_missed_write(setup):
    """Host rows by every insert path add up; with the tally triggers off a write goes uncounted, which the
    check after every test (``tests/conftest.py``: ``triggers.tallies_kept_and_counted``) reports;
    ``recount`` puts it right."""
    reps, pool, meeting_type = setup
    at = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    made = [new_booking(meeting_type, pool, i) for i in range(3)]
    host(made[0], reps[0], assigned_at=at).save()
    BookingHost.objects.bulk_create([host(made[1], reps[0], assigned_at=at)])
    sqlwrites.insert([host(made[2], reps[0], assigned_at=at)])
    assert tallies(pool) == buckets(reps[0], "confirmed", "2026-03-03", "2026-03-02", "2026-03-01", n=3)
    kept, counted = triggers.tallies_kept_and_counted(connection)
    assert kept == counted
    triggers.uninstall(connection, tally_only=True)
    try:
        assert triggers.installed(connection) == triggers.NAMES[connection.vendor] - TALLY_NAMES
        host(made[0], reps[1], assigned_at=at).save()
        kept, counted = triggers.tallies_kept_and_counted(connection)
        assert counted - kept and not kept - counted
    finally:
        triggers.install(connection)
        triggers.recount(connection)
    assert (
        triggers.tallies_kept_and_counted(connection)[0] == triggers.tallies_kept_and_counted(connection)[1]
    )
    assert tallies(pool)[("all", "1970-01-01", reps[1].pk, "confirmed")] == 1


@pytest.mark.django_db(transaction=True)
def test_migration_0010_counts_the_host_rows_written_before_it(setup):
    """Unapplied, the tallies' table and triggers go (the copy triggers stay); applied again, it counts the
    host rows written meanwhile."""
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor

    reps, pool, meeting_type = setup
    at = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    host(new_booking(meeting_type, pool, 0, "completed"), reps[0], assigned_at=at).save()
    later = new_booking(meeting_type, pool, 1)  # made now: the bookings' table of 0009 has fewer columns
    call_command("migrate", "booking", "0009", verbosity=0)
    try:
        assert "booking_hosttally" not in connection.introspection.table_names()
        assert triggers.installed(connection) == triggers.NAMES[connection.vendor] - TALLY_NAMES
        # through 0009's own model: today's names columns (``invitation``) that 0009 does not have
        state = MigrationExecutor(connection).loader.project_state(("booking", "0009_host_ledger_copies"))
        state.apps.get_model("booking", "BookingHost").objects.create(
            booking_id=later.pk,
            rep_id=reps[1].pk,
            blocked_start=later.start,
            blocked_end=later.end,
            assigned_at=at,
        )
    finally:
        call_command("migrate", verbosity=0)
    assert triggers.installed(connection) == triggers.NAMES[connection.vendor]
    assert tallies(pool) == {
        **buckets(reps[0], "completed", "2026-03-03", "2026-03-02", "2026-03-01"),
        **buckets(reps[1], "confirmed", "2026-03-03", "2026-03-02", "2026-03-01"),
    }


def test_on_sqlite_host_rows_deleted_after_their_tallies_leave_no_negative_tally(setup):
    """Django's test flush on SQLite empties the tables one by one with ``DELETE``, in no fixed order: host
    rows deleted after the tallies must not leave -1 rows (PostgreSQL's flush truncates: no trigger fires,
    and there a missing tally is an inconsistency the check after every test reports)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's decrement")
    reps, pool, meeting_type = setup
    host(
        new_booking(meeting_type, pool), reps[0], assigned_at=dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    ).save()
    HostTally.objects.all().delete()
    BookingHost.objects.all().delete()
    assert not HostTally.objects.exists()


def test_recount_tallies_checks_and_rebuilds(setup, capsys):
    """``manage.py recount_tallies``: ``--check`` passes on kept tallies and fails on wrong ones; the
    command then rebuilds them."""
    from django.core.management import CommandError, call_command

    reps, pool, meeting_type = setup
    host(
        new_booking(meeting_type, pool), reps[0], assigned_at=dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    ).save()
    call_command("recount_tallies", "--check")
    assert "match the host rows (4 tally rows)" in capsys.readouterr().out
    HostTally.objects.filter(pool_id=pool.pk, kind="all").update(n=5)  # as a restore without triggers leaves
    with pytest.raises(CommandError, match="differ from the host rows"):
        call_command("recount_tallies", "--check")
    call_command("recount_tallies")
    assert "rebuilt from the host rows (2 rows differed)" in capsys.readouterr().out
    assert tallies(pool) == buckets(reps[0], "confirmed", "2026-03-03", "2026-03-02", "2026-03-01")
