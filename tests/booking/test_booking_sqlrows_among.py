"""``routing.sqlrows.among``: the hot path's rep lists. On PostgreSQL one array parameter, so a statement's
text (and its prepared statement) does not change with the pool's size, and no statement passes psycopg's
50 parameters, past which psycopg parses the statement again on every execution."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from booking.services import booking_create
from routing import sqlrows
from routing.models import Rep
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def test_among_selects_the_listed_rows_on_either_backend():
    reps = [make_rep(days=()) for _ in range(60)]
    wanted = sorted(r.pk for r in reps[::2])
    test, params = sqlrows.among(wanted)
    rows = sqlrows.rows(f"SELECT id FROM routing_rep WHERE id {test} ORDER BY id", params)
    assert [rep_id for (rep_id,) in rows] == wanted
    assert Rep.objects.count() == 60


def test_among_is_one_array_on_postgresql_and_an_in_list_elsewhere():
    test, params = sqlrows.among((3, 1, 2))
    if connection.vendor == "postgresql":
        assert (test, params) == ("= ANY(%s::bigint[])", ["{3,1,2}"])
    else:
        assert (test, params) == ("IN (%s, %s, %s)", [3, 1, 2])


@pytest.mark.postgres
@pytest.mark.usefixtures("clock")
def test_a_booking_in_a_60_rep_pool_sends_no_statement_over_50_parameters():
    pool = make_pool("first_available", [make_rep() for _ in range(60)])
    meeting_type = make_meeting_type(pool)
    seen: list[tuple[str, int]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        booking_create(
            meeting_type=meeting_type,
            start=dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC),
            name="Pat Prospect",
            email="pat@example.org",
            timezone="Europe/Berlin",
        )
    assert len(seen) > 8  # the pool's loads, the ledger and the inserts went through the wrapper
    over = [(sql[:80], n) for sql, n in seen if n > 50]
    assert not over, over
