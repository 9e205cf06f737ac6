"""PostgreSQL: requests with one Idempotency-Key take turns from before their planning (a transaction-scoped
advisory lock on the key, in the booking's transaction), waiting at most the lock timeout, and leave no lock
behind whatever the outcome."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from booking.errors import IdempotencyConflict, SlotUnavailable, TryAgain
from booking.models import Booking
from booking.services import idempotency
from tests.booking.booking_factories import START, create_keyed, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clock")]


def _key_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
            [idempotency.KEY_LOCK_CLASS],
        )
        return cursor.fetchone()[0]


def _other_connection():
    params = connection.get_connection_params()
    return psycopg.connect(**{k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k)})


@pytest.mark.django_db
def test_a_request_waits_for_the_keys_turn_at_most_the_lock_timeout(settings):
    settings.BOOKING_LOCK_TIMEOUT_MS = 200
    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("K")]))
    with _other_connection() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", idempotency.key_lock("held"))
        with pytest.raises(TryAgain):
            create_keyed(meeting_type, "held")
        assert not Booking.objects.exists()
        create_keyed(meeting_type, "another key")  # other keys do not wait
    assert create_keyed(meeting_type, "held", email="held@example.org", start=START + dt.timedelta(hours=1))


@pytest.mark.django_db(transaction=True)
def test_no_key_lock_outlives_the_request_whatever_its_outcome():
    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("L")]))
    first = create_keyed(meeting_type, "one")
    assert _key_locks() == 0
    assert create_keyed(meeting_type, "one").replayed
    assert _key_locks() == 0
    with pytest.raises(SlotUnavailable):
        create_keyed(meeting_type, "two", email="other@example.org")
    assert _key_locks() == 0
    with pytest.raises(IdempotencyConflict):
        create_keyed(meeting_type, "one", email="other@example.org")
    assert _key_locks() == 0
    assert Booking.objects.get().pk == first.body["id"]


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_that_waited_replays_without_planning(monkeypatch):
    """The duplicate arrives while the first request with the key is planning (slowly): it waits for the
    key's turn, then replays the first one's response and never reads the pool."""
    from booking.services import create

    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("W")]))
    planning, planned, outcomes = threading.Event(), [], []
    real_plan = create._plan

    def slow_plan(*args, **kwargs):
        planned.append(threading.get_ident())
        planning.set()
        time.sleep(0.3)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(create, "_plan", slow_plan)

    def run() -> None:
        try:
            outcomes.append(create_keyed(meeting_type, "dup"))
        finally:
            connections.close_all()

    first = threading.Thread(target=run)
    first.start()
    assert planning.wait(5)
    duplicate = threading.Thread(target=run)
    duplicate.start()
    first.join(10)
    duplicate.join(10)
    assert len(planned) == 1  # the first request's only
    assert sorted(result.replayed for result in outcomes) == [False, True]  # in either order of return
    assert outcomes[0].body == outcomes[1].body
    assert Booking.objects.count() == 1
