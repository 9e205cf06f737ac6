"""The host rows a booking reads (under its locks) and a slot page reads are those overlapping a window. As
two comparisons (``blocked_end > lo AND blocked_start < hi``) a b-tree can bound only one side, and
PostgreSQL read every later host row of the reps, or the whole table. As a range overlap, the exclusion
constraint's GiST index (``bookinghost_no_overlap``) finds the rows near the window, from a few pages since
it leads with the range (booking migration 0011; led by the rep it read most of its pages for all a pool's
reps). This reads the plans PostgreSQL makes, with and without statistics, over a pool with many future
bookings."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from booking.models import Booking, BookingHost
from routing import selectors, sqlrows
from routing.core import Interval
from tests.booking.booking_factories import NOW, bulk_bookings, make_meeting_type, make_pool, make_rep
from tests.booking.plans import generic_index_pages, index_pages, table_access

pytestmark = pytest.mark.django_db


def build(reps: int = 5, bookings: int = 3000):
    members = [make_rep() for _ in range(reps)]
    pool = make_pool("first_available", members)
    meeting_type = make_meeting_type(pool)
    base = NOW + dt.timedelta(hours=2)
    bulk_bookings(meeting_type, members, [base + dt.timedelta(hours=i // reps) for i in range(bookings)])
    return pool, meeting_type


def host_statements(monkeypatch, pool, meeting_type, start) -> list[tuple[str, list]]:
    """The statements that read host rows for a booking at ``start``: phase one (with its probe of the
    booking's range) and phase two (under the locks)."""
    seen = []
    original, original_batch = sqlrows.rows, sqlrows.batch

    def note(sql, params):
        if "FROM booking_bookinghost" in sql and "blocked_start" in sql:
            seen.append((sql, params))

    def spy(sql, params, **kw):
        note(sql, params)
        return original(sql, params, **kw)

    def spy_batch(statements, **options):
        for sql, params in statements:
            note(sql, params)
        return original_batch(statements, **options)

    monkeypatch.setattr(sqlrows, "rows", spy)
    monkeypatch.setattr(sqlrows, "batch", spy_batch)
    window = Interval(start, start + dt.timedelta(minutes=30))
    calendars = selectors.load_pool_calendars(
        pool, meeting_type, now=NOW, window=window, probe=(start, window.end)
    )
    selectors.load_pool_bookings(calendars, now=NOW)
    monkeypatch.undo()
    return seen


@pytest.mark.postgres
@pytest.mark.parametrize("analysed", [False, True], ids=["no-statistics", "analysed"])
def test_host_rows_near_the_window_come_from_the_gist_index(monkeypatch, analysed):
    pool, meeting_type = build()
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")
    start = NOW + dt.timedelta(days=3, hours=1)
    statements = host_statements(monkeypatch, pool, meeting_type, start)
    assert len(statements) == 2, statements  # phase one's probe, phase two's rows
    for sql, params in statements:
        found = table_access(sql, params, "booking_bookinghost")
        assert found and set(found) == {"bookinghost_no_overlap"}, (sql, found)


@pytest.mark.postgres
def test_a_50_rep_pools_host_rows_near_a_booking_come_from_a_few_index_pages(monkeypatch):
    """50 reps, 5,000 future host rows: both statements read a few pages of the index (2 each here; led by
    the rep, 54 each)."""
    pool, meeting_type = build(reps=50, bookings=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")
    statements = host_statements(monkeypatch, pool, meeting_type, NOW + dt.timedelta(days=2, hours=1))
    pages = [index_pages(sql, params, "booking_bookinghost") for sql, params in statements]
    assert len(pages) == 2 and all(0 < n <= 10 for n in pages), pages


@pytest.mark.postgres
def test_prepared_without_statistics_the_host_rows_still_come_from_a_few_index_pages(monkeypatch):
    """The server runs these statements prepared (psycopg), and PostgreSQL keeps one generic plan for them,
    made with the statistics of the moment: a new database has none. Planned so, the rep test
    (``= ANY(…)``) became a condition of the GiST scan, and a bitmap scan runs such a condition once per
    rep: 50 scans of the index's pages near the window, 0.3 ms under the locks of a 50-rep pool's every
    booking (2026-12-07). The rep test is a filter on what the range found instead (``poolrows.near``)."""
    pool, meeting_type = build(reps=50, bookings=5000)
    statements = host_statements(monkeypatch, pool, meeting_type, NOW + dt.timedelta(days=2, hours=1))
    pages = [generic_index_pages(sql, params, "booking_bookinghost") for sql, params in statements]
    assert len(pages) == 2 and all(0 < n <= 10 for n in pages), pages


def test_the_overlap_test_keeps_its_bounds():
    """``[start, end)`` ranges, on both databases: a host row ending at the window's start or starting at its
    end is not in it; an inactive one never is."""
    spans = [(-60, 0), (0, 30), (30, 60), (-30, 90), (10, 20), (60, 90), (-10, 70)]
    reps = [make_rep() for _ in spans]
    pool = make_pool("first_available", reps)
    meeting_type = make_meeting_type(pool)
    start = NOW + dt.timedelta(days=1)
    for k, ((a, b), rep) in enumerate(zip(spans, reps, strict=True)):
        booking = Booking.objects.create(
            meeting_type=meeting_type,
            pool=pool,
            start=start + dt.timedelta(minutes=a),
            end=start + dt.timedelta(minutes=b),
            prospect_name="B",
            prospect_email="b@example.com",
            prospect_timezone="UTC",
            manage_token_hash=f"bounds-{k}",
            decision={},
        )
        BookingHost.objects.create(
            booking=booking, rep=rep, blocked_start=booking.start, blocked_end=booking.end, active=k != 3
        )
    ids, listed = sqlrows.among([r.pk for r in reps])
    near, overlap = selectors.near(ids), selectors.host_overlap()
    sql = selectors.HOSTS_BUSY_SQL.format(near=near, overlap=overlap, exclude="")
    lo, hi = sqlrows.at(start), sqlrows.at(start + dt.timedelta(minutes=60))
    minutes = sorted(
        (
            int((sqlrows.aware(s) - start).total_seconds() // 60),
            int((sqlrows.aware(e) - start).total_seconds() // 60),
        )
        for _, s, e in sqlrows.rows(sql, [*listed, lo, hi])
    )
    assert minutes == [(-10, 70), (0, 30), (10, 20), (30, 60)]
