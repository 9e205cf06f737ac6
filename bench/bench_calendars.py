"""Benchmark: syncing busy times from the fake Google Calendar server.

* full sync of 100 calendars with 500 events each (first sync after connecting);
* incremental sync of the same 100 calendars after 5 changes each (2 moved, 1 deleted, 2 new).

The real google-api-python-client talks HTTP to the loopback fake; the database is a throwaway test
database (SQLite in memory by default, PostgreSQL with DATABASE_URL=postgres://…). Prints wall time and
the number of SQL queries (CaptureQueriesContext).

    .venv/bin/python bench/bench_calendars.py
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from tests.fakes.google import FakeGoogle  # noqa: E402

CALENDARS = 100
EVENTS = 500
CHANGES = 5


def main() -> None:
    fake = FakeGoogle().start()
    os.environ.setdefault("DEBUG", "1")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["TOKEN_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ.update(
        GOOGLE_CLIENT_ID="bench",
        GOOGLE_CLIENT_SECRET="bench",
        GOOGLE_API_ENDPOINT=fake.api_endpoint,
        GOOGLE_TOKEN_URI=f"{fake.base_url}/token",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    setup_test_environment()
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(fake, connection, CaptureQueriesContext)
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        fake.stop()


def run(fake: FakeGoogle, connection, CaptureQueriesContext) -> None:
    from calendars.models import BusyInterval, Calendar, CalendarConnection
    from calendars.services.connections import calendars_refresh, connection_create
    from calendars.services.sync import calendar_sync
    from routing.models import Rep

    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    calendar_ids = []
    for n in range(CALENDARS):
        email = f"rep{n:03d}@bench.example"
        account = fake.add_account(email)
        events = []
        for i in range(EVENTS):
            start = now + dt.timedelta(hours=5 + i * 8)  # spread over ~166 days
            events.append(
                {
                    "id": f"ev{n:03d}x{i:04d}",
                    "summary": "Busy",
                    "start": {"dateTime": start.isoformat().replace("+00:00", "Z")},
                    "end": {
                        "dateTime": (start + dt.timedelta(minutes=45)).isoformat().replace("+00:00", "Z")
                    },
                }
            )
        fake.bulk_load(email, events)
        rep = Rep.objects.create(name=f"Rep {n}", email=email, timezone="Europe/Berlin")
        tokens = fake.issue_tokens(email)
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        conn = connection_create(
            rep=rep,
            provider=CalendarConnection.Provider.GOOGLE,
            account_email=email,
            secrets={
                "token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "expiry": expiry,
            },
        )
        calendars_refresh(connection_id=conn.pk)
        calendar_ids.append(Calendar.objects.get(connection=conn, external_id=account.email).pk)

    requests_before = len(fake.requests)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        outcomes = [calendar_sync(calendar_id=pk) for pk in calendar_ids]
        full_seconds = time.perf_counter() - started
    assert set(outcomes) == {"full"}, outcomes
    rows = BusyInterval.objects.count()
    assert rows == CALENDARS * EVENTS, rows
    full_queries, full_requests = len(queries), len(fake.requests) - requests_before

    for n in range(CALENDARS):
        email = f"rep{n:03d}@bench.example"
        for i in (1, 2):  # moved by an hour
            event = fake.calendar(email).events[f"ev{n:03d}x{i:04d}"]
            start = dt.datetime.fromisoformat(
                event["start"]["dateTime"].replace("Z", "+00:00")
            ) + dt.timedelta(hours=1)
            fake.put_event(
                email, start=start, end=start + dt.timedelta(minutes=45), event_id=event["id"], notify=False
            )
        fake.cancel_event(email, f"ev{n:03d}x0003", notify=False)
        for i in (0, 1):  # new
            start = now + dt.timedelta(days=2, hours=i)
            fake.put_event(email, start=start, end=start + dt.timedelta(minutes=30), notify=False)

    requests_before = len(fake.requests)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        outcomes = [calendar_sync(calendar_id=pk) for pk in calendar_ids]
        incr_seconds = time.perf_counter() - started
    assert set(outcomes) == {"incremental"}, outcomes
    assert BusyInterval.objects.count() == CALENDARS * (EVENTS + 1)
    incr_queries, incr_requests = len(queries), len(fake.requests) - requests_before

    print(f"database: {connection.vendor}")
    print(
        f"full sync, {CALENDARS} calendars x {EVENTS} events: {full_seconds:.2f} s wall "
        f"({full_seconds / CALENDARS * 1000:.1f} ms/calendar), {full_queries} SQL queries "
        f"({full_queries / CALENDARS:.1f}/calendar), {full_requests} HTTP requests, {rows} busy rows"
    )
    print(
        f"incremental sync, {CHANGES} changes each: {incr_seconds:.2f} s wall "
        f"({incr_seconds / CALENDARS * 1000:.1f} ms/calendar), {incr_queries} SQL queries "
        f"({incr_queries / CALENDARS:.1f}/calendar), {incr_requests} HTTP requests"
    )


if __name__ == "__main__":
    main()
