"""The instant route's pool locks (PostgreSQL): instant routes of a pool take turns, yet the pool's rows stay
open to what only references them (a booking's or a member's foreign-key check)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import connection, connections, transaction

from leads.instant import _lock_pools
from routing.models import PoolMember
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@contextlib.contextmanager
def instant_route_holding_its_locks(meeting_type):
    """Another connection in an instant route's transaction, holding its pool locks until the block ends."""
    held, release = threading.Event(), threading.Event()

    def route():
        try:
            with transaction.atomic():
                _lock_pools(meeting_type)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=route)
    thread.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        thread.join(10)


def lock_timeout_300ms() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '300ms'")


def test_an_instant_route_does_not_hold_up_rows_that_reference_its_pool():
    """``_lock_pools`` took ``FOR UPDATE`` on the pool rows, which also blocks the ``FOR KEY SHARE`` of every
    foreign-key check on them: each booking of the pool (its row names the pool) waited for the instant
    route, and did so while holding its reps' locks. ``FOR NO KEY UPDATE`` serialises instant routes all
    the same and leaves key checks alone."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana])
    meeting_type = make_meeting_type(pool, slug="instant-locks")
    with instant_route_holding_its_locks(meeting_type), transaction.atomic():
        lock_timeout_300ms()
        PoolMember.objects.create(pool=pool, rep=ben)  # its foreign-key check reads the pool row
    assert PoolMember.objects.filter(pool=pool, rep=ben).exists()


def test_instant_routes_of_one_pool_still_take_turns():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    pool = make_pool("first_available", [make_rep("Ana")])
    meeting_type = make_meeting_type(pool, slug="instant-turns")
    held = instant_route_holding_its_locks(meeting_type)
    with held, pytest.raises(Exception, match="lock timeout"), transaction.atomic():
        lock_timeout_300ms()
        _lock_pools(meeting_type)
