"""The fairness ledger's host-row query with a period start runs under the booking locks, so its plan must
not depend on fresh statistics. On a table not yet analysed, a join form of the "last assignment" subquery
let PostgreSQL drive from all the pool's bookings for every rep (rows x reps, 31 ms in the booking bench);
a pessimistic estimate on an analysed table pushed the query over ``jit_above_cost`` (14 ms of JIT for a
0.6 ms query). This reads the plan PostgreSQL makes in both states."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from booking.models import Booking, BookingHost
from routing import ledger, sqlrows
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def build(reps: int = 5, bookings: int = 600):
    members = [make_rep() for _ in range(reps)]
    pool = make_pool("first_available", members)
    pool.fairness_period = "week"
    pool.save(update_fields=["fairness_period"])
    meeting_type = make_meeting_type(pool)
    base = NOW - dt.timedelta(hours=bookings)
    rows = Booking.objects.bulk_create(
        Booking(
            meeting_type=meeting_type,
            pool=pool,
            start=base + dt.timedelta(hours=i),
            end=base + dt.timedelta(hours=i, minutes=30),
            status="confirmed",
            prospect_name="Past",
            prospect_email=f"p{i}@example.com",
            prospect_timezone="UTC",
            manage_token_hash=f"plan-{i}",
            decision={},
        )
        for i in range(bookings)
    )
    BookingHost.objects.bulk_create(
        BookingHost(
            booking=b,
            rep=members[i % reps],
            blocked_start=b.start,
            blocked_end=b.end,
            active=True,
            assigned_at=b.start,
        )
        for i, b in enumerate(rows)
    )
    return pool, [m.pk for m in members]


def hosts_plan(monkeypatch, pool, rep_ids) -> dict:
    """EXPLAIN (FORMAT JSON) of the host-row statement ``pool_ledger`` sends, with its parameters."""
    seen = []
    original = sqlrows.rows

    def spy(sql, params):
        if "assigned_at DESC" in sql:
            seen.append((sql, params))
        return original(sql, params)

    monkeypatch.setattr(sqlrows, "rows", spy)
    ledger.pool_ledger(pool, rep_ids, now=NOW)
    monkeypatch.undo()
    assert len(seen) == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + seen[0][0], seen[0][1])
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def last_assignment(plan: dict) -> dict:
    """The per-rep "newest host row" subplan: a Limit whose subtree reads the rep's host rows backwards."""
    for node in nodes(plan):
        if node["Node Type"] == "Limit" and node.get("Parent Relationship") == "SubPlan":
            return node
    raise AssertionError(f"no last-assignment subplan in {json.dumps(plan)[:400]}")


@pytest.mark.parametrize("analysed", [False, True], ids=["no-statistics", "analysed"])
def test_last_assignment_reads_each_reps_rows_not_the_pools(monkeypatch, analysed):
    pool, rep_ids = build()
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")
    limit = last_assignment(hosts_plan(monkeypatch, pool, rep_ids))
    scans = [n for n in nodes(limit) if "Scan" in n["Node Type"]]
    # The rep's host rows through an index on the rep; the booking by its key, row by row: never a walk
    # over the pool's bookings (nor a sequential scan) for each rep.
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"]
    indexes = {n["Index Name"]: n["Index Cond"] for n in scans if "Index Name" in n}
    assert indexes.pop("booking_booking_pkey", "").startswith("(id = "), indexes
    assert set(indexes.values()) == {"(rep_id = r.id)"}, indexes
    if analysed:  # with statistics: a backward step in (rep, assigned_at) that stops at the first match
        (scan,) = [n for n in scans if n.get("Relation Name") == "booking_bookinghost"]
        assert (scan.get("Index Name"), scan.get("Scan Direction")) == ("host_rep_assigned", "Backward")
        # The planner expects to stop early, not to read the rep's whole history (that estimate, over 50
        # reps, is what crossed jit_above_cost).
        assert limit["Total Cost"] < scan["Total Cost"] / 10, (limit["Total Cost"], scan["Total Cost"])


def test_plan_total_stays_far_below_the_jit_threshold(monkeypatch):
    """The booking bench's ledger: 50 reps, 20,000 past bookings."""
    pool, rep_ids = build(reps=50, bookings=20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")
        cursor.execute("SHOW jit_above_cost")
        threshold = float(cursor.fetchone()[0])
    assert hosts_plan(monkeypatch, pool, rep_ids)["Total Cost"] < threshold / 10
