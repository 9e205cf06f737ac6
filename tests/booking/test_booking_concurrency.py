"""PostgreSQL concurrency suite: no double booking under real parallel requests, and a negative control
proving the suite can fail when the lock and the exclusion constraint are both switched off."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from booking.models import Booking, BookingHost
from booking.services import locking
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.booking.booking_factories import body as full_body
from tests.booking.booking_race import lock_held_elsewhere, post_json, run_together, status_counts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ADD_CONSTRAINT = (
    "ALTER TABLE booking_bookinghost ADD CONSTRAINT bookinghost_no_overlap EXCLUDE USING gist "
    "(tstzrange(blocked_start, blocked_end, '[)') WITH &&, rep_id WITH =) WHERE (active)"
)


@pytest.fixture
def ticking_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def single(ticking_clock):
    rep = make_rep("Solo")
    return make_meeting_type(make_pool("round_robin", [rep]), slug="solo")


def body(start="2026-03-03T10:00:00+01:00", **kw):
    return full_body(start, answers={}, **kw)


def url(mt):
    return f"/api/v1/meeting-types/{mt.slug}/bookings"


def test_50_attempts_on_one_slot_one_wins_20_rounds(single):
    for round_no in range(20):
        day, hour = 3 + round_no // 8, 9 + round_no % 8
        start = f"2026-03-{day:02d}T{hour:02d}:00:00+01:00"
        results = run_together(
            50, lambda i, start=start: post_json(url(single), body(start, email=f"p{i}@x.org"))
        )
        counts = status_counts(results)
        assert counts == {201: 1, 409: 49}, (
            round_no,
            counts,
            [r for r in results if not isinstance(r, tuple)][:3],
        )
        assert all(r[1]["code"] == "slot_unavailable" for r in results if r[0] == 409)
    assert Booking.objects.count() == 20
    assert BookingHost.objects.filter(active=True).count() == 20


def test_first_available_pool_of_5_gets_exactly_5_bookings(ticking_clock):
    reps = [make_rep(f"R{i}") for i in range(5)]
    mt = make_meeting_type(make_pool("first_available", reps), slug="fa")
    results = run_together(50, lambda i: post_json(url(mt), body(email=f"p{i}@x.org")))
    assert status_counts(results) == {201: 5, 409: 45}
    hosts = list(BookingHost.objects.filter(active=True).values_list("rep_id", flat=True))
    assert sorted(hosts) == sorted(r.pk for r in reps)


def test_20_concurrent_requests_with_one_idempotency_key(single):
    results = run_together(20, lambda i: post_json(url(single), body(), {"Idempotency-Key": "same-key-1"}))
    assert status_counts(results) == {201: 20}
    assert all(r[1] == results[0][1] for r in results)
    assert Booking.objects.count() == 1


def test_lock_timeout_is_409_try_again(single, settings):
    settings.BOOKING_LOCK_TIMEOUT_MS = 200
    rep_id = single.pool.members.get().rep_id
    with lock_held_elsewhere(rep_id):
        status, data = post_json(url(single), body())
    assert (status, data["code"]) == (409, "try_again")
    assert post_json(url(single), body())[0] == 201


@pytest.fixture
def race_window(monkeypatch):
    """Make every request reach the insert together: the live check (just before the insert) waits at a
    barrier of ``n`` parties."""
    state = {}

    def arm(n):
        state["barrier"] = threading.Barrier(n)

    def at_insert(rep_ids, start, end, *, timeout_seconds, live=None):
        with contextlib.suppress(threading.BrokenBarrierError):
            state["barrier"].wait(timeout=20)
        return set()

    monkeypatch.setattr("booking.services.routing.hosts_busy_live", at_insert)
    return arm


def test_constraint_alone_stops_the_race(single, race_window, monkeypatch):
    monkeypatch.setattr(locking, "LOCKS_ENABLED", False)
    race_window(10)
    results = run_together(10, lambda i: post_json(url(single), body(email=f"p{i}@x.org")))
    assert status_counts(results) == {201: 1, 409: 9}


def test_negative_control_without_lock_and_constraint_double_books(single, race_window, monkeypatch):
    monkeypatch.setattr(locking, "LOCKS_ENABLED", False)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE booking_bookinghost DROP CONSTRAINT bookinghost_no_overlap")
    try:
        race_window(10)
        results = run_together(10, lambda i: post_json(url(single), body(email=f"p{i}@x.org")))
        created = status_counts(results)[201]
        assert created > 1, "the race did not happen: the suite could not detect a missing lock"
        assert BookingHost.objects.filter(active=True).count() == created
    finally:
        BookingHost.objects.all().delete()  # leave no overlap behind for the autouse check
        with connection.cursor() as cursor:
            cursor.execute(ADD_CONSTRAINT)


def test_raw_overlapping_insert_violates_exclusion(single):
    status, data = post_json(url(single), body())
    assert status == 201
    host = BookingHost.objects.get()
    other = Booking.objects.get()
    other.pk, other.manage_token_hash = None, "0" * 64
    other.save()  # a second booking without hosts
    with pytest.raises(IntegrityError) as info, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO booking_bookinghost (booking_id, rep_id, role, blocked_start, blocked_end, active, "
            "assigned_at, released) VALUES (%s, %s, '', %s, %s, true, now(), '')",
            [
                other.pk,
                host.rep_id,
                host.blocked_start + dt.timedelta(minutes=10),
                host.blocked_end + dt.timedelta(minutes=10),
            ],
        )
    assert "bookinghost_no_overlap" in str(info.value)
    # an inactive overlapping row, or an adjacent active one, is fine
    BookingHost.objects.create(
        booking=other,
        rep_id=host.rep_id,
        blocked_start=host.blocked_end,
        blocked_end=host.blocked_end + dt.timedelta(minutes=30),
    )
