"""What Baton does when PostgreSQL misbehaves (PostgreSQL only): a connection terminated by the server, a
lock held long by another session, a statement_timeout, the database read-only after a failover, a database
host that does not answer, a write refused as if the disk were full.

A production booking service must answer the public API with JSON and a stable code (503 with Retry-After
for a transient database problem, 409 ``try_again`` for a lock wait past ``BOOKING_LOCK_TIMEOUT_MS``), never
hang a worker on a lock, and report through ``/readyz`` whether it can serve bookings. A second psycopg
connection of the test terminates backends, holds locks and changes the test database's settings."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import OperationalError, connection, connections
from django.test import Client

from booking.models import Booking
from booking.services import locking
from calendars.models import Calendar, CalendarConnection
from calendars.providers.base import BusyEvent, SyncResult
from calendars.services import sync
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clock")]


@pytest.fixture
def production(settings):
    settings.DEBUG = False  # the API's JSON 500 (with DEBUG: Django's debug page)
    settings.BOOKING_LOCK_TIMEOUT_MS = 300
    return settings


def _dsn(dbname: str | None = None) -> dict:
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k)}
    if dbname:
        dsn["dbname"] = dbname
    return dsn


@contextmanager
def elsewhere():
    """Another session on the test database (its transaction ends with the block)."""
    with psycopg.connect(**_dsn()) as other:
        yield other


@contextmanager
def database_setting(name: str, value: str):
    """``ALTER DATABASE <test db> SET name = value`` for new connections (as a DBA or a failover does),
    undone afterwards; Django's connection of this thread is closed on both sides so it reconnects."""
    db = connection.settings_dict["NAME"]
    with psycopg.connect(**_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{db}" SET {name} = {value}')
        connection.close()
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{db}" RESET {name}')
            connection.close()


def in_thread(fn):
    """Run ``fn()`` in a thread with its own database connection: (thread, outcome dict)."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def api_post(path: str, data: dict, **headers):
    return Client(raise_request_exception=False).post(
        path, data, content_type="application/json", headers=headers
    )


def probe(path: str):
    return Client(raise_request_exception=False).get(path)


def bookings_url(meeting_type) -> str:
    return f"/api/v1/meeting-types/{meeting_type.slug}/bookings"


def one_rep_type():
    rep = make_rep("Ana")
    return rep, make_meeting_type(make_pool("round_robin", [rep]), questions=[])


def wait_for_waiter(other, sql: str, deadline: float = 10.0) -> int:
    """The pid of the backend found by ``sql`` (a lock it waits for), once it waits."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        row = other.execute(sql).fetchone()
        if row:
            return row[0]
        time.sleep(0.02)
    raise AssertionError("the request never waited for the lock held elsewhere")


# a backend of this database (pg_locks is the cluster's) waiting for an advisory lock
WAITING_FOR_ADVISORY = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


# --- /readyz -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_readiness_is_503_while_the_database_only_accepts_reads(production):
    """After a failover to a replica (or a primary put read-only) every connection's transactions are
    read-only: each booking fails ("cannot execute nextval() in a read-only transaction"), yet /readyz's
    ``SELECT 1`` succeeds and it answers 200, so the load balancer keeps sending prospects to a service
    that cannot book. Readiness must check that the database accepts writes."""
    _, meeting_type = one_rep_type()
    with database_setting("default_transaction_read_only", "on"):
        booked = api_post(bookings_url(meeting_type), body(answers={}))
        during = probe("/readyz")
    after = probe("/readyz")
    assert booked.status_code != 201  # the database cannot take a booking
    assert during.status_code == 503, during.json()
    assert during.json()["checks"]["database"] == "unavailable"
    assert after.status_code == 200  # and ready again once it accepts writes


@pytest.mark.django_db(transaction=True)
def test_readiness_answers_503_promptly_when_the_database_host_does_not_answer(production):
    """A database host that accepts TCP but never answers (a hung server, a failover's old address behind
    a proxy): /readyz waits for psycopg's default connect timeout (130 s) instead of answering 503, and each
    probe ties up a sync gunicorn worker that long, so /healthz (liveness) stops answering too and every web
    process is restarted: what config/health.py says it avoids. No ``connect_timeout`` is set
    (config/env.py ``parse_database_url``), nor one of the readiness check's own."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshake; nothing ever answers
    settings_dict = connection.settings_dict
    saved = settings_dict["HOST"], settings_dict["PORT"]
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(listener.getsockname()[1])
    started = time.monotonic()
    try:
        thread, outcome = in_thread(lambda: (probe("/readyz").status_code, time.monotonic() - started))
        thread.join(10)
        answered = not thread.is_alive()
    finally:
        settings_dict["HOST"], settings_dict["PORT"] = saved
        listener.close()  # releases the waiting connect
        thread.join(30)
        connection.close()
    assert answered, "/readyz was still waiting for the database after 10 s"
    assert outcome["result"][0] == 503


# --- lock waits --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cancel_waiting_for_a_locked_booking_row_answers_try_again(production):
    """Another session holds the booking's row (another change of the booking: a reschedule asking a
    calendar live under its locks, an admin's reassignment or deletion waiting for its reps, any long
    transaction). docs/booking-api.md: "Waiting longer than BOOKING_LOCK_TIMEOUT_MS is answered with
    try_again and changes nothing". The cancellation waits for the row without any limit: the
    ``lock_timeout`` is only set by the rep-lock statement, after ``booking_by_token(for_update=True)``
    (booking/services/manage.py ``booking_cancel``; reschedule, outcome, reassign and delete alike)."""
    _, meeting_type = one_rep_type()
    made = api_post(bookings_url(meeting_type), body(answers={})).json()
    with elsewhere() as other:
        other.execute("SELECT id FROM booking_booking WHERE id = %s FOR UPDATE", [made["id"]])
        thread, outcome = in_thread(lambda: api_post(f"/api/v1/bookings/{made['manage_token']}/cancel", {}))
        thread.join(4)  # 300 ms allowed
        answered = not thread.is_alive()
    thread.join(15)
    assert answered, "the cancellation waited for the booking row as long as another session held it"
    response = outcome["result"]
    assert (response.status_code, response.json()["code"]) == (409, "try_again")
    assert Booking.objects.get().status == Booking.Status.CONFIRMED


@pytest.mark.django_db(transaction=True)
def test_a_booking_behind_a_table_lock_answers_try_again_within_the_lock_timeout(production):
    """A migration's ``ALTER TABLE booking_bookinghost`` (ACCESS EXCLUSIVE) holds the table for a while.
    The booking's reads before its rep locks (the slot probe of ``load_pool_calendars``) run without any
    ``lock_timeout``: every booking waits as long as the lock lasts, so each sync worker hangs (gunicorn's
    30 s timeout kills it and the prospect gets the proxy's 502), where a lock wait past
    BOOKING_LOCK_TIMEOUT_MS is meant to be a 409 ``try_again`` (the same lock on booking_booking,
    booking_idempotencykey, the ledger or the outbox, taken under the rep locks, is one within 0.3 s)."""
    _, meeting_type = one_rep_type()
    with elsewhere() as other:
        other.execute("LOCK TABLE booking_bookinghost IN ACCESS EXCLUSIVE MODE")
        thread, outcome = in_thread(
            lambda: api_post(bookings_url(meeting_type), body(answers={}), **{"Idempotency-Key": "k"})
        )
        thread.join(4)
        answered = not thread.is_alive()
    thread.join(15)
    assert answered, "the booking waited for the table lock as long as it was held"
    response = outcome["result"]
    assert (response.status_code, response.json()["code"]) == (409, "try_again")


@pytest.mark.django_db(transaction=True)
def test_a_statement_timeout_while_waiting_for_a_rep_is_try_again_not_a_server_error(production):
    """A DBA's ``statement_timeout`` (500 ms here) shorter than BOOKING_LOCK_TIMEOUT_MS: a booking waiting
    for a rep locked by another booking is cancelled by PostgreSQL with 57014 (query_canceled), which
    ``locking.is_contention`` does not know (only 55P03, 40P01, 40001), so it is a 500 ``server_error``
    instead of the 409 ``try_again`` of the same wait ended by the lock timeout."""
    production.BOOKING_LOCK_TIMEOUT_MS = 20_000
    rep, meeting_type = one_rep_type()
    with database_setting("statement_timeout", "500"), elsewhere() as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [locking.NAMESPACE | rep.pk])
        thread, outcome = in_thread(lambda: api_post(bookings_url(meeting_type), body(answers={})))
        thread.join(10)
        other.rollback()
        thread.join(15)
    response = outcome["result"]
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "try_again"
    assert not Booking.objects.exists()


# --- the database going away -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connection_terminated_mid_booking_is_a_503_with_retry_after_and_the_retry_books(production):
    """The server ends the booking's backend while it waits for a rep's lock (a restart, a failover,
    ``pg_terminate_backend``). Nothing was committed and the same request may be sent again: a transient
    database failure is a 503 with Retry-After, JSON. It is answered 500 ``server_error`` without
    Retry-After (booking/api/errors.py ``server_error``: every unexpected exception). The retry with the
    same Idempotency-Key books once."""
    production.BOOKING_LOCK_TIMEOUT_MS = 20_000
    rep, meeting_type = one_rep_type()
    url, data = bookings_url(meeting_type), body(answers={})
    with elsewhere() as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [locking.NAMESPACE | rep.pk])
        thread, outcome = in_thread(lambda: api_post(url, data, **{"Idempotency-Key": "mid"}))
        pid = wait_for_waiter(other, WAITING_FOR_ADVISORY)
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        thread.join(15)
    response = outcome["result"]
    retried = api_post(url, data, **{"Idempotency-Key": "mid"})
    assert retried.status_code == 201 and Booking.objects.count() == 1
    assert response["Content-Type"] == "application/json"
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db(transaction=True)
def test_a_booking_while_the_database_is_read_only_is_a_503_with_retry_after(production):
    """After a failover to a replica the database takes no writes for a while (25006,
    read_only_sql_transaction): nothing is booked and the prospect should try again shortly, a 503 with
    Retry-After. It is a 500 ``server_error`` without Retry-After, mailed to ADMINS for every attempt."""
    _, meeting_type = one_rep_type()
    with database_setting("default_transaction_read_only", "on"):
        response = api_post(bookings_url(meeting_type), body(answers={}), **{"Idempotency-Key": "ro"})
    assert not Booking.objects.exists()
    assert response["Content-Type"] == "application/json"
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0


# --- calendar sync -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_a_sync_writes_busy_times_is_recorded_on_the_calendar(production, monkeypatch):
    """The provider answered; writing its busy times fails in the database (here a trigger raising
    53100 disk_full, as "could not extend file: No space left on device"). The OperationalError leaves
    ``calendar_sync`` (and the Celery task) with nothing recorded: the calendar's ``last_error`` stays
    empty and the connection ``connected``, so the rep's busy times go stale and the rep is withheld
    after CALENDAR_STALENESS_MINUTES with no message anywhere, as provider-code errors did before
    docs/calendars.md's fix ("the exception left the sync task and the calendar went stale with no
    message"). It should be a failed sync: ``last_error`` and the connection in ``error``."""
    rep = make_rep("Ana")
    conn = CalendarConnection.objects.create(rep=rep, provider="ics", secret_blob="-", account_email="feed")
    calendar = Calendar.objects.create(connection=conn, external_id="feed", blocks_availability=True)
    start = dt.datetime(2026, 3, 3, 10, tzinfo=dt.UTC)

    class Provider:
        def sync(self, external_id, state, *, window, zone):
            busy = BusyEvent("standup", start, start + dt.timedelta(hours=1))
            return SyncResult(upserts=[busy], next_state="s1", full=True)

    monkeypatch.setattr(sync, "provider_for", lambda connection: Provider())
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION hunt_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            "'could not extend file: No space left on device' USING ERRCODE = '53100'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER hunt_disk_full BEFORE INSERT ON calendars_busyinterval "
            "FOR EACH ROW EXECUTE FUNCTION hunt_disk_full()"
        )
    try:
        try:
            result = sync.calendar_sync(calendar_id=calendar.pk)
        except OperationalError as exc:
            result = exc
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER hunt_disk_full ON calendars_busyinterval")
            cursor.execute("DROP FUNCTION hunt_disk_full()")
    calendar.refresh_from_db()
    conn.refresh_from_db()
    assert result == "failed", f"calendar_sync raised {result!r}"
    assert calendar.last_error and calendar.last_attempt_at is not None
    assert calendar.last_synced_at is None and calendar.sync_lease_until is None
    assert conn.status == CalendarConnection.Status.ERROR
