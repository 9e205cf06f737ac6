"""Benchmark: syncing busy times from the fake Google Calendar server.

* full sync of 100 calendars with 500 events each (first sync after connecting);
* incremental sync of the same 100 calendars after 5 changes each (2 moved, 1 deleted, 2 new);
* the slot page (``GET /api/v1/meeting-types/<slug>/slots``, 20 reps, 14 days) for reps whose synced
  calendars hold ~500 busy rows each, against the same page for 20 reps without calendars: syncing must not
  make it slower, and it must not call any provider.

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
SLOT_REPS = 20
SLOT_REQUESTS = 15


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
        GOOGLE_REVOKE_URI=f"{fake.base_url}/revoke",
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

    paths = {label: slot_pool(label, calendar_ids[:SLOT_REPS]) for label in ("synced", "manual", "free")}
    page = slot_page(fake, connection, CaptureQueriesContext, paths)

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
    print(f"slot page, {SLOT_REPS} reps x 14 days (round robin), median of {SLOT_REQUESTS} requests:")
    for label, text in (
        ("synced", "synced calendars"),
        ("manual", "same busy rows, no calendars"),
        ("free", "no busy rows, no calendars"),
    ):
        ms, queries, http, slots = page[label]
        print(f"  {text:<30} {ms:6.1f} ms, {queries} queries, {slots} slots, {http} provider requests")


def slot_pool(label: str, calendar_pks: list[int]) -> str:
    """A round-robin pool and meeting type for the slot-page comparison; returns the slots path.

    ``synced``: the reps owning ``calendar_pks`` (synced Google calendars). ``manual``: fresh reps without
    calendars given copies of those reps' busy rows (the same busy data, no sync involved). ``free``: fresh
    reps without calendars or busy rows."""
    from booking.models import MeetingType
    from calendars.models import BusyInterval, Calendar, WorkingHours
    from routing.models import Pool, PoolMember, Rep

    synced = [
        c.connection.rep
        for c in Calendar.objects.select_related("connection__rep").filter(pk__in=calendar_pks).order_by("pk")
    ]
    if label == "synced":
        reps = synced
    else:
        reps = [
            Rep.objects.create(
                name=f"{label} {n}", email=f"{label}{n:03d}@bench.example", timezone="Europe/Berlin"
            )
            for n in range(len(synced))
        ]
    if label == "manual":
        BusyInterval.objects.bulk_create(
            [
                BusyInterval(rep=copy, start=start, end=end, source=BusyInterval.Source.MANUAL)
                for original, copy in zip(synced, reps, strict=True)
                for start, end in BusyInterval.objects.filter(rep=original).values_list("start", "end")
            ],
            batch_size=1000,
        )
    WorkingHours.objects.bulk_create(
        [WorkingHours(rep=r, weekday=d, start=dt.time(9), end=dt.time(17)) for r in reps for d in range(5)]
    )
    pool = Pool.objects.create(name=label, slug=f"bench-{label}", strategy="round_robin")
    PoolMember.objects.bulk_create([PoolMember(pool=pool, rep=r) for r in reps])
    MeetingType.objects.create(
        slug=f"bench-{label}",
        title=label,
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=0,
        horizon_days=14,
        pool=pool,
    )
    return f"/api/v1/meeting-types/bench-{label}/slots"


def slot_page(fake, connection, CaptureQueriesContext, paths: dict[str, str]) -> dict[str, tuple]:
    """Per pool: median wall time, queries, provider requests and slot count of the slot page. The pools are
    requested in turn, round after round, so machine load affects them alike."""
    from django.test import Client

    client = Client()
    for path in paths.values():  # warm-up
        assert client.get(path).status_code == 200
    requests_before = len(fake.requests)
    timings = {label: [] for label in paths}
    last = {}
    for _ in range(SLOT_REQUESTS):
        for label, path in paths.items():
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                answer = client.get(path)
                timings[label].append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.content[:300]
            last[label] = (len(captured), len(answer.json()["slots"]))
    provider_requests = len(fake.requests) - requests_before
    result = {}
    for label, values in timings.items():
        values.sort()
        queries, slots = last[label]
        result[label] = (values[len(values) // 2] * 1000, queries, provider_requests, slots)
    return result


if __name__ == "__main__":
    main()
