"""The fairness ledger's query runs under the booking locks, so its plan must not depend on fresh statistics
nor grow with the pool's history. On a table not yet analysed, a join form of the "last assignment" subquery
let PostgreSQL drive from all the pool's bookings for every rep (rows x reps, 31 ms in the booking bench);
a pessimistic estimate on an analysed table pushed the query over ``jit_above_cost`` (14 ms of JIT for a
0.6 ms query); looking up each host row's booking cost 5.2 ms at 1,600 bookings in a month. This reads the
plan PostgreSQL makes in both states: host rows from index ``host_ledger`` only (no booking looked up), the
ledger entries from the partial index ``ledger_pool_special`` (not every booking's "assigned" entry)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from routing import ledger, sqlrows
from routing.models import LedgerEntry
from tests.booking.booking_factories import NOW, bulk_bookings, make_meeting_type, make_pool, make_rep
from tests.booking.plans import explain

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def build(reps: int = 5, bookings: int = 600):
    members = [make_rep() for _ in range(reps)]
    pool = make_pool("first_available", members)
    pool.fairness_period = "week"
    pool.save(update_fields=["fairness_period"])
    meeting_type = make_meeting_type(pool)
    base = NOW - dt.timedelta(hours=bookings)
    rows = bulk_bookings(meeting_type, members, [base + dt.timedelta(hours=i) for i in range(bookings)])
    LedgerEntry.objects.bulk_create(  # as every booking writes one
        LedgerEntry(pool=pool, rep=members[i % reps], booking=b, kind="assigned", delta=1.0)
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
    return explain(*seen[0])


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
    # The rep's host rows in the pool through the ledger index, newest first: no booking is looked up, and
    # never a walk over the pool's bookings (nor a sequential scan) for each rep.
    assert [n.get("Index Name") for n in scans] == ["host_ledger"], scans
    (scan,) = scans
    assert scan["Index Cond"].endswith("AND (rep_id = r.id))"), scan["Index Cond"]
    assert scan["Index Cond"].startswith("((booking_pool_id = "), scan["Index Cond"]
    assert scan["Scan Direction"] == "Backward"
    if not analysed:
        return
    # With statistics, the planner expects to stop early, not to read the rep's whole history (that
    # estimate, over 50 reps, is what crossed jit_above_cost).
    assert limit["Total Cost"] < scan["Total Cost"] / 5, (limit["Total Cost"], scan["Total Cost"])


@pytest.mark.parametrize("analysed", [False, True], ids=["no-statistics", "analysed"])
def test_count_reads_the_ledger_index_and_few_ledger_entries(monkeypatch, analysed):
    pool, rep_ids = build()
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute(
                "ANALYZE booking_booking; ANALYZE booking_bookinghost; ANALYZE routing_ledgerentry"
            )
    plan = hosts_plan(monkeypatch, pool, rep_ids)
    scans = [n for n in nodes(plan) if "Scan" in n["Node Type"]]
    relations = {n.get("Relation Name") for n in scans}
    assert "booking_booking" not in relations, scans
    host_scans = {
        n["Node Type"]: n.get("Index Name") for n in scans if n.get("Relation Name") == "booking_bookinghost"
    }
    assert set(host_scans.values()) == {"host_ledger"}, host_scans
    entry_scans = [n for n in scans if n.get("Relation Name") == "routing_ledgerentry"]
    assert entry_scans, scans
    assert {n.get("Index Name") for n in entry_scans} == {"ledger_pool_special"}, entry_scans


def test_plan_total_stays_far_below_the_jit_threshold(monkeypatch):
    """The booking bench's ledger: 50 reps, 20,000 past bookings."""
    pool, rep_ids = build(reps=50, bookings=20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")
        cursor.execute("SHOW jit_above_cost")
        threshold = float(cursor.fetchone()[0])
    assert hosts_plan(monkeypatch, pool, rep_ids)["Total Cost"] < threshold / 10
