"""Benchmark: the fairness ledger of a pool with a long history (``routing.ledger.pool_ledger``).

Every slot page and every booking reads the pool's ledger. This builds a 50-rep pool with 20,000 past
bookings (``BENCH_LEDGER_HISTORY``; one an hour up to an hour ago: host rows and ``assigned`` ledger
entries) plus a few non-counting overrides, refreshes PostgreSQL's statistics (as autovacuum keeps them),
then times ``pool_ledger`` for the fairness periods ``never`` (the whole history), ``rolling_30d`` (the
last 720 bookings) and ``week`` (168). Each reads the period's count from the host rows' fairness tallies
(``booking.HostTally``: the all-time bucket, the week's, or a first day's host rows and a few day and week
buckets), a few rows per rep, and each rep's newest host row: flat in the history's length and in the
period's bookings (until 2026-12-06 ``never`` counted the whole history and the others the period's rows).
Uses the booking benchmark's throwaway database (PostgreSQL next to ``DATABASE_URL=postgres://…``, else
SQLite).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton .venv/bin/python bench/bench_ledger.py
    BENCH_LEDGER_HISTORY=100000 DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton .venv/bin/python \
        bench/bench_ledger.py
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_booking  # noqa: E402

HISTORY = int(os.environ.get("BENCH_LEDGER_HISTORY", "20000"))
RUNS = 15


def build() -> tuple:
    from booking.models import Booking, BookingHost, MeetingType
    from routing.models import LedgerEntry, PoolMember

    meeting_type = MeetingType.objects.get(slug=bench_booking.seed()["big"])
    pool = meeting_type.pool
    reps = list(PoolMember.objects.filter(pool=pool).values_list("rep_id", flat=True))
    # one booking an hour, the last one an hour ago (the current period holds the most recent ones)
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HISTORY)
    bookings = Booking.objects.bulk_create(
        Booking(
            meeting_type=meeting_type,
            pool=pool,
            start=base + dt.timedelta(hours=i),
            end=base + dt.timedelta(hours=i, minutes=30),
            status="confirmed",
            prospect_name="Past",
            prospect_email=f"p{i}@bench.example",
            prospect_timezone="UTC",
            manage_token_hash=f"bench-{i}",
            decision={},
        )
        for i in range(HISTORY)
    )
    BookingHost.objects.bulk_create(
        BookingHost(
            booking=b,
            rep_id=reps[i % len(reps)],
            blocked_start=b.start,
            blocked_end=b.end,
            active=True,
            assigned_at=b.start,
        )
        for i, b in enumerate(bookings)
    )
    entries = [
        LedgerEntry(pool=pool, rep_id=reps[i % len(reps)], booking=b, kind="assigned", delta=1.0)
        for i, b in enumerate(bookings)
    ]
    for b in bookings[:20]:  # a few non-counting overrides (routing.overrides: account_owner)
        entries.append(LedgerEntry(pool=pool, rep_id=reps[0], booking=b, kind="reassigned_to", delta=0.0))
    LedgerEntry.objects.bulk_create(entries)
    return pool, reps


def main() -> int:
    database_url, cleanup = bench_booking.make_database()
    os.environ.update(bench_booking._env(database_url))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    try:
        call_command("migrate", verbosity=0)
        pool, reps = build()
        if connection.vendor == "postgresql":  # fresh statistics, as autovacuum keeps them on a live database
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        from routing.ledger import pool_ledger

        now = dt.datetime.now(dt.UTC)
        print(f"database: {connection.vendor}; pool of {len(reps)} reps with {HISTORY} past bookings")
        for period in ("never", "rolling_30d", "week"):
            pool.fairness_period = period
            pool.save(update_fields=["fairness_period"])
            pool_ledger(pool, reps, now=now)
            times = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                pool_ledger(pool, reps, now=now)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"pool_ledger, fairness period {period:<11}  median {statistics.median(times):7.1f} ms")
    finally:
        connections.close_all()
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
