"""PostgreSQL: requests with one Idempotency-Key take turns from before their planning (a session-level
advisory lock on the key), waiting at most the lock timeout, and leave no lock behind whatever the outcome."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import connection

from booking.errors import IdempotencyConflict, SlotUnavailable, TryAgain
from booking.models import Booking
from booking.services import booking_create, idempotency
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clock")]
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


def _create(meeting_type, key, email="pat@example.org", start=START):
    return booking_create(
        meeting_type=meeting_type,
        start=start,
        name="Pat",
        email=email,
        timezone="Europe/Berlin",
        idempotency_key=key,
    )


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
            _create(meeting_type, "held")
        assert not Booking.objects.exists()
        _create(meeting_type, "another key")  # other keys do not wait
    assert _create(meeting_type, "held", email="held@example.org", start=START + dt.timedelta(hours=1))


@pytest.mark.django_db(transaction=True)
def test_no_key_lock_outlives_the_request_whatever_its_outcome():
    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("L")]))
    first = _create(meeting_type, "one")
    assert _key_locks() == 0
    assert _create(meeting_type, "one").replayed
    assert _key_locks() == 0
    with pytest.raises(SlotUnavailable):
        _create(meeting_type, "two", email="other@example.org")
    assert _key_locks() == 0
    with pytest.raises(IdempotencyConflict):
        _create(meeting_type, "one", email="other@example.org")
    assert _key_locks() == 0
    assert Booking.objects.get().pk == first.body["id"]


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_replays_on_its_turn_without_planning(monkeypatch):
    """The first request with the key books between the duplicate's check before its turn and its turn: the
    duplicate replays the stored response then, and never reads the pool."""
    from booking.services import create

    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("W")]))
    planned, first = [], []
    real_plan, real_replay = create._plan, idempotency.replay
    monkeypatch.setattr(create, "_plan", lambda *a, **k: planned.append(1) or real_plan(*a, **k))

    def first_books_meanwhile(key, request_hash, *, now):
        if not first:  # the duplicate's check before its turn
            first.append(None)
            first[0] = _create(meeting_type, key)
            return None
        return real_replay(key, request_hash, now=now)

    monkeypatch.setattr(idempotency, "replay", first_books_meanwhile)
    duplicate = _create(meeting_type, "dup")
    assert duplicate.replayed and duplicate.body == first[0].body
    assert len(planned) == 1  # the first request's only
    assert Booking.objects.count() == 1
