"""Edge cases of the 503, replay, query-parameter and fairness-standing changes: a query psycopg cannot send
on a healthy connection is a server error (not a 503 to retry), a keyed retry replays after its route token
expired, an empty e-mail snippet parameter is a 400, and a booking committed while standings are kept keeps
its credit."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from booking.models import Booking
from leads.tokens import Route, route_sign
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 2 March 2026


def one_rep_type(**kw):
    rep = make_rep("Ana", tz="UTC", days=range(7))
    return rep, make_meeting_type(make_pool("round_robin", [rep]), **kw)


# --- 503 "unavailable" for a programming error that psycopg raises as an OperationalError


@pytest.mark.postgres
def test_a_query_with_too_many_parameters_is_a_500_not_a_503_to_retry(settings, monkeypatch):
    """With the README's production URL (``server_side_binding=true``) a query with more than 65,535
    parameters (an ``__in`` over a long id list) fails in psycopg before it is sent, as an
    ``OperationalError`` without a SQLSTATE ("sending query and params failed: number of parameters must be
    between 0 and 65535"). ``locking.is_unavailable`` takes any psycopg OperationalError without a SQLSTATE
    for a lost connection, so the API answers 503 ``unavailable`` with ``Retry-After: 5`` ("nothing was
    changed, send it again") for a bug that fails every retry the same way, logs one line without the
    traceback and mails nothing to ADMINS: the bug is hidden as an outage. The connection is fine
    (``is_usable``): it is a server error."""
    if not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        pytest.skip("needs server_side_binding=true, as the README's production DATABASE_URL has")
    settings.DEBUG = False
    from booking.api import views

    def too_many(*args, **kwargs):
        return Booking.objects.filter(pk__in=list(range(1, 70_001))).count()

    monkeypatch.setattr(views.selectors, "meeting_types_active", too_many)
    response = Client(raise_request_exception=False).get("/api/v1/meeting-types")
    assert connection.is_usable()  # the database is there all along
    assert response.status_code == 500, (response.status_code, response.content)
    assert response.json()["code"] == "server_error"
    assert "Retry-After" not in response.headers


# --- an idempotent retry after the route token of the first request expired


def test_a_keyed_retry_of_a_routed_booking_replays_after_its_route_token_expired():
    """docs/booking-api.md: "The same key with the same body, within BOOKING_IDEMPOTENCY_TTL_HOURS (default
    24 h), returns the first response again ... and books nothing more", and a retry replays "even when the
    meeting type changed". A booking made with a route token (the booking page routes first when the
    meeting type has rules) whose response was lost is retried with the same key and body three hours
    later: the token has expired (``BATON_ROUTE_MAX_AGE_SECONDS``, 2 h), ``RouteField`` refuses it, and
    ``booking_replay``'s ``_as_first_sent`` validates the body with the same field, so no request matches
    the stored one: 400 "This route has expired" for a booking that exists (a client told to route again
    books a second meeting)."""
    rep, meeting_type = one_rep_type()
    with time_machine.travel(NOW, tick=False):  # issued by the route API just before the booking
        token = route_sign(Route(pool=meeting_type.pool), meeting_type_id=meeting_type.pk)
    url = f"/api/v1/meeting-types/{meeting_type.slug}/bookings"
    body = {
        "start": "2026-03-03T10:00:00+00:00",
        "name": "Pat",
        "email": "pat@example.org",
        "timezone": "UTC",
        "route": token,
    }
    api = APIClient()
    with time_machine.travel(NOW, tick=False):
        first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="form-route-1")
    assert first.status_code == 201, first.json()
    with time_machine.travel(NOW + dt.timedelta(hours=3), tick=False):
        again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="form-route-1")
    assert Booking.objects.count() == 1
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.json()
    assert again.json()["id"] == first.json()["id"]


# --- an empty query parameter on the e-mail snippet (the API's own were made 400s)


def test_an_empty_timezone_of_the_email_snippet_is_a_400_not_utc():
    """The session made ``?timezone=`` (given empty) a 400 on the slots API ("only a parameter left out takes
    its default": a client whose zone variable was empty was shown UTC times as if local). The e-mail
    snippet (docs/embed.md: "Bad parameters: 400") reads the same parameter with a plain ``TimezoneField``:
    ``?timezone=`` — a mail-merge field left empty — silently gives UTC times, and ``?days=``/``?count=``
    their defaults."""
    _rep, meeting_type = one_rep_type()
    url = f"/book/{meeting_type.slug}/email-snippet"
    with time_machine.travel(NOW, tick=False):
        response = Client().get(url, {"timezone": "", "format": "text"})
    assert response.status_code == 400, response.content[:300]
    assert "timezone" in response.json()["errors"]


# --- a booking committed while a change of the fairness settings keeps the members' standings


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_booking_committed_while_standings_are_kept_keeps_its_credit(monkeypatch):
    """``routing.services.pool_keep_standings`` reads the ledger under the old settings and under the new in
    two statements, then writes each member's difference. A booking committed between the two reads counted
    under the new settings only, and the entry written then (-1) cancelled its credit: the rep stood as if it
    had not booked, and was routed the next meeting too. Here nothing changed (the settings before are the
    settings after): a booking made by another request while the standings are kept must wait for the
    members' booking locks, count once, and no entry be written."""
    import threading
    import time

    from django.db import connections

    from routing import ledger as ledger_module
    from routing.ledger import member_count
    from routing.models import LedgerEntry, PoolMember
    from routing.services import pool_keep_standings, pool_standings

    rep, meeting_type = one_rep_type(questions=[])
    before = pool_standings(meeting_type.pool)
    url = f"/api/v1/meeting-types/{meeting_type.slug}/bookings"
    body = {"start": "2026-03-03T10:00:00+00:00", "name": "Pat", "email": "pat@example.org"}
    body["timezone"] = "UTC"
    outcome: dict = {}

    def book():
        try:  # in the test's time travel (time_machine's is the process's)
            outcome["status"] = APIClient().post(url, body, format="json").status_code
        finally:
            connections.close_all()

    real, calls = ledger_module.pool_ledger, []

    def pool_ledger(*args, **kwargs):
        read = real(*args, **kwargs)
        if not calls:  # after the first read: another request books the rep (and commits, if it can)
            thread = threading.Thread(target=book)
            thread.start()
            calls.append(thread)
            until = time.monotonic() + 10
            with connection.cursor() as cursor:
                while thread.is_alive() and time.monotonic() < until:
                    cursor.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                    if cursor.fetchone():
                        break  # it waits for the reps' locks
                    time.sleep(0.02)
        return read

    monkeypatch.setattr(ledger_module, "pool_ledger", pool_ledger)
    with time_machine.travel(NOW, tick=False):
        entries = pool_keep_standings(meeting_type.pool, before, reason="nothing changed")
        calls[0].join(20)
    assert outcome.get("status") == 201, outcome
    assert entries == [] and not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.JOINED).exists()
    member = PoolMember.objects.get(pool=meeting_type.pool, rep=rep)
    assert member_count(member, real(meeting_type.pool, [rep.pk], now=NOW)) == 1
