"""Phase one reads the synced busy rows overlapping a window (``routing.poolrows.INTERVALS_SQL``). On
PostgreSQL as a range overlap answered by the GiST index ``busy_range_rep`` (range first, then rep: calendars
migration 0007), which reads the index pages near the window, not every later busy row of the reps (a
b-tree) nor most of the index (a GiST led by the rep, migration 0006); the bounds are ``[start, end)`` on
both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from calendars.models import BusyInterval
from routing import selectors, sqlrows
from routing.core import Interval
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.booking.plans import generic_index_pages, index_pages, table_access

pytestmark = pytest.mark.django_db


def intervals_statement(monkeypatch, pool, meeting_type, start) -> tuple[str, list]:
    seen = []
    original = sqlrows.batch

    def spy(statements, **options):  # phase one sends it with other statements
        seen.extend((sql, params) for sql, params in statements if "calendars_busyinterval" in sql)
        return original(statements, **options)

    monkeypatch.setattr(sqlrows, "batch", spy)
    window = Interval(start, start + dt.timedelta(minutes=30))
    selectors.load_pool_calendars(pool, meeting_type, now=NOW, window=window)
    monkeypatch.undo()
    (statement,) = seen
    return statement


@pytest.mark.postgres
@pytest.mark.parametrize("analysed", [False, True], ids=["no-statistics", "analysed"])
def test_busy_rows_near_the_window_come_from_the_gist_index(monkeypatch, analysed):
    reps = [make_rep() for _ in range(5)]
    pool = make_pool("first_available", reps)
    meeting_type = make_meeting_type(pool)
    BusyInterval.objects.bulk_create(
        BusyInterval(rep=rep, start=NOW + dt.timedelta(hours=3 * k), end=NOW + dt.timedelta(hours=3 * k + 1))
        for rep in reps
        for k in range(600)
    )
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE calendars_busyinterval")
    sql, params = intervals_statement(monkeypatch, pool, meeting_type, NOW + dt.timedelta(days=3, hours=1))
    assert table_access(sql, params, "calendars_busyinterval") == ["busy_range_rep"]


@pytest.mark.postgres
@pytest.mark.parametrize("plan", ["analysed", "prepared-without-statistics"])
def test_the_busy_rows_of_a_50_rep_pool_near_a_booking_read_few_index_pages(monkeypatch, plan):
    """50 reps with 60 busy hours each over 60 days: the rows near one booking come from a few index pages
    (2 here; ``busy_rep_range``, led by the rep, read 24 for them). Also as the server runs the statement:
    prepared, with one generic plan made when the table had no statistics, where the rep test
    (``= ANY(…)``) must stay a filter on what the range found, not a condition the bitmap scan runs once per
    rep (``poolrows.near``; 100 pages before it)."""
    reps = [make_rep() for _ in range(50)]
    pool = make_pool("first_available", reps)
    meeting_type = make_meeting_type(pool)
    BusyInterval.objects.bulk_create(
        BusyInterval(
            rep=rep, start=NOW + dt.timedelta(hours=24 * k + i), end=NOW + dt.timedelta(hours=24 * k + i + 1)
        )
        for i, rep in enumerate(reps)
        for k in range(60)
    )
    if plan == "analysed":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE calendars_busyinterval")
    sql, params = intervals_statement(monkeypatch, pool, meeting_type, NOW + dt.timedelta(days=30, hours=5))
    read = index_pages if plan == "analysed" else generic_index_pages
    pages = read(sql, params, "calendars_busyinterval")
    assert 0 < pages <= 8, pages


def test_busy_rows_keep_their_bounds():
    """A busy row ending where the window's busy range starts, or starting where it ends, is not in it."""
    rep = make_rep()
    pool = make_pool("first_available", [rep])
    meeting_type = make_meeting_type(pool)  # 30 minutes, no buffers: busy range = the window + 30 minutes
    start = NOW + dt.timedelta(days=1)
    for a, b in [(-60, 0), (-10, 5), (20, 40), (55, 70), (60, 90), (-30, 120)]:
        BusyInterval.objects.create(
            rep=rep, start=start + dt.timedelta(minutes=a), end=start + dt.timedelta(minutes=b)
        )
    window = Interval(start, start + dt.timedelta(minutes=30))
    calendars = selectors.load_pool_calendars(pool, meeting_type, now=NOW, window=window)
    got = sorted(
        (int((i.start - start).total_seconds() // 60), int((i.end - start).total_seconds() // 60))
        for i in calendars.busy[rep.pk]
    )
    assert got == [(-30, 120), (-10, 5), (20, 40), (55, 70)]
