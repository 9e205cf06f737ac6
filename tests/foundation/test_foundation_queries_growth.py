"""Work that grows with the data on pages and paths real users hit: admin change pages that run a query per
inline row, a route decision that reads every outcome of the pool's history, an owner lookup that reads the
whole booking history for every new lead, a dashboard whose statement grows one bind parameter per booking,
and an account import that writes one statement per CSV row. Each test builds two sizes and asserts that
the query count, the rows read, the pages read or the bind parameters do not grow with the size."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from booking.models import Booking, BookingOutcome
from leads.models import PoolPerformance, RoutingRule
from routing.models import Pool, PoolMember
from tests.booking.booking_factories import NOW, bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def queries(client, url: str) -> int:
    """How many queries opening ``url`` runs (the page must open)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


class Statements:
    """Every statement run inside the block, with its parameters (``connection.execute_wrapper``)."""

    def __init__(self):
        self.seen: list[tuple[str, tuple]] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    def __enter__(self):
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        return self._wrapper.__exit__(*exc)

    def selects(self) -> list[tuple[str, tuple]]:
        return [(sql, p) for sql, p in self.seen if sql.lstrip().upper().startswith("SELECT")]


def rows_returned(sql: str, params: tuple) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


def route_body(email: str = "pat@newco.example") -> dict:
    return {"email": email, "name": "Pat Prospect", "timezone": "Europe/Berlin"}


# --- admin change pages ------------------------------------------------------------------------------------


def test_a_reps_page_does_not_run_queries_per_pool_membership(admin_client):
    """The rep's change page lists the rep's pool memberships (``MembershipInline``): each row shows its
    pool (a read-only foreign key) and a change link labelled ``str(PoolMember)`` (the rep's name and the
    pool's), and the inline's queryset joins neither: two queries per membership (the rep, the pool). A
    rep in 20 pools (one per region, segment and meeting type) costs 40 more queries on the page admins
    open to edit hours and time off; the pool page was fixed for the same reason (``PoolMemberInline``
    joins rep and pool)."""
    rep = make_rep()
    url = reverse("admin:routing_rep_change", args=[rep.pk])

    def join_pools(first: int, count: int) -> None:
        for n in range(first, first + count):
            pool = Pool.objects.create(name=f"Pool {n}", slug=f"pool-m{n}", strategy="first_available")
            PoolMember.objects.create(pool=pool, rep=rep)

    join_pools(0, 2)
    few = queries(admin_client, url)
    join_pools(100, 18)
    many = queries(admin_client, url)
    assert many <= few + 2, f"rep in 2 pools: {few} queries; in 20 pools: {many}"


def test_a_meeting_types_page_does_not_run_queries_per_routing_rule(admin_client):
    """The meeting type's change page shows its routing rules (``RoutingRuleInline``), each with a pool and
    a fallback pool drop-down. Django builds each row's drop-downs from their own query of every pool: two
    queries per rule. A territory set-up with 30 rules (one per region or segment) opens with 60 more
    queries, each reading the whole pool table."""
    pool = make_pool("first_available", [make_rep() for _ in range(2)])
    meeting_type = make_meeting_type(pool)
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])

    def add_rules(first: int, count: int) -> None:
        RoutingRule.objects.bulk_create(
            RoutingRule(
                meeting_type=meeting_type, name=f"Territory {n}", order=n, pool=pool, fallback_pool=pool
            )
            for n in range(first, first + count)
        )

    add_rules(0, 2)
    few = queries(admin_client, url)
    add_rules(2, 28)
    many = queries(admin_client, url)
    assert many <= few + 2, f"2 rules: {few} queries; 30 rules: {many}"


# --- the prospect's route request ---------------------------------------------------------------------------


def _outcomes(meeting_type, reps, count: int, first_day: int) -> None:
    """``count`` held meetings of ``reps`` in turn, each with an outcome recorded a few days ago."""
    starts = [NOW - dt.timedelta(days=first_day, minutes=30 * i) for i in range(count)]
    bookings = bulk_bookings(meeting_type, reps, starts)
    Booking.objects.filter(pk__in=[b.pk for b in bookings]).update(status="completed")
    BookingOutcome.objects.bulk_create(
        BookingOutcome(booking=b, kind="won" if i % 3 == 0 else "held", amount=100 if i % 3 == 0 else None,
                       recorded_at=NOW - dt.timedelta(days=3))
        for i, b in enumerate(bookings)
    )  # fmt: skip


def test_a_route_decision_does_not_read_every_outcome_of_the_window(settings):
    """With performance weighting on (``PoolPerformance``, default window 90 days, up to 730), every
    ``POST …/route`` (the booking page of a meeting type with routing rules asks it before it shows any
    slot) and every instant route (``POST /api/v1/route``) runs ``leads.selectors.performance_factors``,
    which fetches one row per outcome recorded in the window and counts them in Python. A 50-rep pool
    with four outcomes a day per rep sends 18,000 rows (146,000 at 730 days) to every prospect's route
    request; a per-rep aggregate is one row per member."""
    settings.BOOKING_RATE_LIMIT = ""
    with time_machine.travel(NOW, tick=False):
        reps = [make_rep() for _ in range(3)]
        pool = make_pool("first_available", reps)
        meeting_type = make_meeting_type(pool)
        PoolPerformance.objects.create(pool=pool, enabled=True)
        api = APIClient()
        url = f"/api/v1/meeting-types/{meeting_type.slug}/route"

        def largest_result() -> int:
            with Statements() as statements:
                response = api.post(url, route_body(), format="json")
            assert response.status_code == 200, response.content
            return max(rows_returned(sql, p) for sql, p in statements.selects())

        _outcomes(meeting_type, reps, 6, first_day=40)
        few = largest_result()
        _outcomes(meeting_type, reps, 150, first_day=20)
        many = largest_result()
    assert many <= few + 3, f"largest result of one statement: {few} rows at 6 outcomes, {many} at 156"


def _table_pages(sql: str, params: tuple, table: str) -> int:
    """Pages of ``table`` (heap and its indexes) the executed plan of ``sql`` read."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    todo, pages = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]], 0
    while todo:
        node = todo.pop()
        below = node.get("Plans", [])
        todo.extend(below)
        if node.get("Relation Name") == table:
            pages += node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
            if node["Node Type"] == "Bitmap Heap Scan":
                todo.extend(below)  # its index scans are counted where they are reached
    return pages


@pytest.mark.postgres
def test_an_account_owner_lookup_does_not_read_the_whole_booking_history(settings):
    """An ``account_owner`` rule asks ``leads.owners.AccountOwnerBackend`` for every lead; with
    ``BATON_LEARN_OWNERS`` (default on) and no ``Account`` row — every new company — it looks for the
    latest held meeting with the same address (``prospect_email__iexact``), then anyone at the same domain
    (``prospect_email__iendswith``). Neither can use an index (there is none on the prospect's address, and
    UPPER(…) LIKE '%@domain' can use none), so each reads every booking: the pages read grow with the
    history, twice per prospect on the route request that precedes the slots (a full scan of a table of
    hundreds of thousands of bookings with their JSON decisions)."""
    settings.BOOKING_RATE_LIMIT = ""
    with time_machine.travel(NOW, tick=False):
        reps = [make_rep() for _ in range(4)]
        pool = make_pool("first_available", reps)
        meeting_type = make_meeting_type(pool)
        RoutingRule.objects.create(
            meeting_type=meeting_type, name="Owner", outcome="account_owner", pool=pool
        )
        api = APIClient()
        url = f"/api/v1/meeting-types/{meeting_type.slug}/route"

        def history(count: int, first_day: int) -> None:
            starts = [NOW - dt.timedelta(days=first_day, minutes=30 * i) for i in range(count)]
            bookings = bulk_bookings(meeting_type, reps, starts)
            ids = [b.pk for b in bookings]
            Booking.objects.filter(pk__in=ids).update(status="completed")
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE booking_booking; ANALYZE booking_bookinghost")

        def pages_read(email: str) -> int:
            with Statements() as statements:
                response = api.post(url, route_body(email), format="json")
            assert response.status_code == 200, response.content
            return sum(
                _table_pages(sql, p, "booking_booking")
                for sql, p in statements.selects()
                if "booking_booking" in sql and "prospect_email" in sql
            )

        history(400, first_day=400)
        few = pages_read("pat@firstco.example")
        history(4000, first_day=300)
        many = pages_read("sam@secondco.example")
    assert many <= few * 2 + 10, f"booking pages read: {few} with 400 bookings, {many} with 4,400"


# --- the insights dashboard ---------------------------------------------------------------------------------


def test_the_dashboards_statements_do_not_grow_a_parameter_per_booking(admin_client):
    """``insights.kpis.rep_rows`` loads the period's bookings, then their host rows with
    ``booking_id__in=[every booking id]``: one bind parameter per booking. With the production setting the
    README recommends (``server_side_binding=true``) PostgreSQL takes at most 65,535 parameters, so the
    dashboard of a busy pool over a year (or the ten years the form allows) is a 500 ("number of parameters
    must be between 0 and 65535"); before that the statement text grows with every booking. A join or a
    subquery on the same period needs a fixed number of parameters."""
    with time_machine.travel(NOW - dt.timedelta(days=3), tick=False):
        reps = [make_rep() for _ in range(3)]
        pool = make_pool("first_available", reps)
        meeting_type = make_meeting_type(pool)
    params = {"pool": pool.slug, "start": "2026-02-01 00:00", "end": "2026-03-02 06:00"}

    def most_parameters() -> int:
        with time_machine.travel(NOW, tick=False), Statements() as statements:
            assert admin_client.get("/insights/", params).status_code == 200
        return max(len(p) for _, p in statements.seen)

    def made(count: int, day: int) -> None:
        with time_machine.travel(NOW - dt.timedelta(days=2), tick=False):
            bulk_bookings(
                meeting_type, reps, [NOW + dt.timedelta(days=day, minutes=30 * i) for i in range(count)]
            )

    made(5, 5)
    few = most_parameters()
    made(200, 8)
    many = most_parameters()
    assert many <= few + 5, f"most bind parameters of one statement: {few} at 5 bookings, {many} at 205"


# --- account import -----------------------------------------------------------------------------------------


def test_an_account_import_writes_in_batches_not_a_statement_per_row():
    """``manage.py import_accounts`` (``leads.accounts.accounts_import``) creates each new account with its
    own INSERT (and updates each changed one with its own UPDATE): a CRM export of 50,000 accounts is
    50,000 round trips inside one transaction that holds its row locks throughout. The rows are all checked
    before anything is written, so they can be written in batches (``bulk_create`` / ``bulk_update``)."""
    from leads.accounts import accounts_import

    owner = make_rep()

    def csv_text(first: int, count: int) -> io.StringIO:
        lines = ["domain,name,crm_id,owner_email"]
        lines += [f"co{n}.example,Company {n},crm-{n},{owner.email}" for n in range(first, first + count)]
        return io.StringIO("\n".join(lines) + "\n")

    with CaptureQueriesContext(connection) as small:
        assert accounts_import(csv_text(0, 5))["created"] == 5
    with CaptureQueriesContext(connection) as large:
        assert accounts_import(csv_text(100, 200))["created"] == 200
    assert len(large) <= len(small) + 5, f"{len(small)} statements for 5 rows, {len(large)} for 200"
