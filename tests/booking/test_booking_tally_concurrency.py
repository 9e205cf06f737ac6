"""Fairness tallies under concurrent writes (PostgreSQL). A cancellation moves its host rows' tallies from
``confirmed`` to ``cancelled`` while a new booking of the same rep adds to that rep's tallies of the same
day (the first race writes both without the rep locks, which the trigger must survive on its own; a write
that bypasses the services takes none): both must take the tally rows' locks in one order
(``booking.triggers._move``: one upsert, its rows in bucket order). Written first with an ``UPDATE`` for
the decrement, which locks in index order, the two deadlocked: the negative control puts that form back
and sees it happen.

A group booking's host rows come in the order of their roles, a cancellation's (its booking's status copied
to them by a trigger) in the order they lie in the table, which a reassignment can reverse: between two
reps, too, two writes could take each other's tally rows in opposite orders. Every write that moves a rep's
tallies therefore holds the reps' locks first (``locking.lock_reps``, in one order): the race of a group
booking's insert and another one's cancellation deadlocks without them (the second negative control) and
not with them; tests/booking/test_booking_change_locks.py shows the services taking them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.utils import timezone

from booking import triggers
from booking.models import Booking, BookingHost
from booking.services import locking
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.booking.booking_race import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 60


def bookings(meeting_type, n: int, tag: str, *, days: int) -> list[Booking]:
    start = timezone.now() + dt.timedelta(days=days)
    return Booking.objects.bulk_create(
        Booking(
            meeting_type=meeting_type,
            pool=meeting_type.pool,
            start=start + dt.timedelta(hours=i),
            end=start + dt.timedelta(hours=i, minutes=30),
            status="confirmed",
            prospect_name="P",
            prospect_email="p@example.org",
            prospect_timezone="UTC",
            manage_token_hash=f"tally-{tag}-{i:050d}",
        )
        for i in range(n)
    )


def hosted_by(meeting_type, n: int, tag: str, reps: list) -> list[Booking]:
    """``n`` bookings tomorrow, each with host rows for ``reps`` assigned now, inserted in that order."""
    hosted = bookings(meeting_type, n, tag, days=1)
    now = timezone.now()
    BookingHost.objects.bulk_create(
        BookingHost(booking=b, rep=rep, blocked_start=b.start, blocked_end=b.end, assigned_at=now)
        for b in hosted
        for rep in reps
    )
    return hosted


def attempt(write) -> str:
    """``write(cursor)`` in a transaction of its own: ``ok``, or ``deadlock`` when PostgreSQL broke one
    (found in 20 ms, not PostgreSQL's 1 s); anything else fails the test."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL deadlock_timeout = '20ms'")
            write(cursor)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - a deadlock is what this counts; anything else fails
        if locking.sqlstate(exc) == locking.DEADLOCK:
            return "deadlock"
        raise


def cancel(cursor, booking: Booking) -> None:
    cursor.execute("UPDATE booking_booking SET status = 'cancelled' WHERE id = %s", [booking.pk])


def add_hosts(cursor, booking: Booking, hosts: list[tuple]) -> None:
    """Host rows of ``booking`` for ``hosts`` ((rep, role), …) in one insert, in that order."""
    cursor.execute(
        "INSERT INTO booking_bookinghost (booking_id, rep_id, role, blocked_start, blocked_end, active, "
        "assigned_at, released) VALUES " + ", ".join("(%s, %s, %s, %s, %s, true, now(), '')" for _ in hosts),
        [v for rep, role in hosts for v in (booking.pk, rep.pk, role, booking.start, booking.end)],
    )


def count(rounds: int, threads: int, write, *, stop_at_first: bool) -> dict:
    """``rounds`` rounds of ``write(i, r)`` (``attempt``'s answer) in ``threads`` threads released together;
    how many writes ended each way."""
    seen = {"ok": 0, "deadlock": 0}
    for r in range(rounds):
        for result in run_together(threads, lambda i, r=r: write(i, r)):
            if isinstance(result, BaseException):
                raise result
            seen[result] += 1
        if stop_at_first and seen["deadlock"]:
            break
    return seen


def race(rounds: int, *, stop_at_first: bool = False) -> dict:
    """Rounds of two cancellations and two new host rows of one rep, today, four threads released together;
    counts of what each write did (``ok`` or ``deadlock``)."""
    rep = make_rep()
    meeting_type = make_meeting_type(make_pool("first_available", [rep]))
    hosted = hosted_by(meeting_type, 2 * rounds, "hosted", [rep])
    fresh = bookings(meeting_type, 2 * rounds, "fresh", days=60)  # after every hosted one

    def write(i: int, r: int) -> str:
        k = 2 * r + i // 2
        if i % 2 == 0:
            return attempt(lambda cursor: cancel(cursor, hosted[k]))
        return attempt(lambda cursor: add_hosts(cursor, fresh[k], [(rep, "")]))

    return count(rounds, 4, write, stop_at_first=stop_at_first)


def test_cancellations_and_new_bookings_of_one_rep_do_not_deadlock_on_the_tallies():
    assert race(ROUNDS) == {"ok": 4 * ROUNDS, "deadlock": 0}


def test_negative_control_the_decrement_as_an_update_deadlocks():
    """The same race with the decrement as an ``UPDATE`` of the old row's buckets, as first written."""
    take = triggers._move("postgresql", "OLD", -1)
    buckets = " OR ".join(
        f"(kind = '{kind}' AND start = {start.format(at='OLD.assigned_at')})"
        for kind, start in triggers.BUCKETS["postgresql"]
    )
    update = (
        "UPDATE booking_hosttally SET n = n - 1 WHERE pool_id = OLD.booking_pool_id AND rep_id = OLD.rep_id "
        f"AND status = OLD.booking_status AND ({buckets})"
    )
    function = triggers.POSTGRESQL_TALLY[0]
    assert take in function
    with connection.cursor() as cursor:
        cursor.execute(function.replace(take, update))
    try:
        seen = race(5 * ROUNDS, stop_at_first=True)
    finally:
        triggers.install(connection)
    assert seen["deadlock"] >= 1, seen


def two_rep_race(rounds: int, *, locked: bool, stop_at_first: bool = False) -> dict:
    """Rounds of a new group booking's host rows for reps (a, b), in that order, in one insert, and the
    cancellation of another booking of theirs whose host rows lie in the table as (b, a), two threads
    released together; with ``locked`` each write takes both reps' locks first, as the services do."""
    a, b = make_rep(), make_rep()
    meeting_type = make_meeting_type(make_pool("group", [a, b], roles=["ae", "se"]))
    hosted = hosted_by(meeting_type, rounds, "ph", [b, a])
    fresh = bookings(meeting_type, rounds, "pf", days=60)

    def write(i: int, r: int) -> str:
        def change(cursor) -> None:
            if locked:
                locking.lock_reps([a.pk, b.pk])
            if i == 0:
                cancel(cursor, hosted[r])
            else:
                add_hosts(cursor, fresh[r], [(a, "ae"), (b, "se")])

        return attempt(change)

    return count(rounds, 2, write, stop_at_first=stop_at_first)


def test_a_group_booking_and_a_cancellation_of_the_same_reps_take_turns():
    assert two_rep_race(ROUNDS, locked=True) == {"ok": 2 * ROUNDS, "deadlock": 0}


def test_negative_control_without_the_rep_locks_they_deadlock():
    seen = two_rep_race(10 * ROUNDS, locked=False, stop_at_first=True)
    assert seen["deadlock"] >= 1, seen
