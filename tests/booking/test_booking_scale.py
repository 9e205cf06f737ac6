"""Baton at production data sizes: admin pages whose query count no longer grows with the rows shown, a
"needs attention" check that reads only upcoming bookings on PostgreSQL, and a deletion that takes the
prospect's personal data in the outbox with it. Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from booking.models import Booking, IdempotencyKey, OutboxMessage
from calendars.models import Calendar, CalendarConnection
from leads.models import Account, Lead, RoutingRule
from tests.booking.booking_factories import NOW, START, bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200, url
    return len(ctx)


def _leads_idempotency_accounts(n: int, tag: str):
    reps = [make_rep() for _ in range(n)]
    pool = make_pool("first_available", reps)
    mt = make_meeting_type(pool)
    rule = RoutingRule.objects.create(meeting_type=mt, name="Enterprise", pool=pool)
    bookings = bulk_bookings(mt, reps, [NOW + dt.timedelta(days=1, hours=i) for i in range(n)])
    for i, b in enumerate(bookings):
        IdempotencyKey.objects.create(
            key_hash=f"{tag}{i:063}", request_hash="r" * 64, booking=b, expires_at=NOW
        )
        Lead.objects.create(
            meeting_type=mt, email=f"l{i}@{tag}{i}.example", name="Lee", domain=f"{tag}{i}.example",
            timezone="UTC", outcome="routed", pool=pool, booking=b, matched_rule=rule,
        )  # fmt: skip
        Account.objects.create(domain=f"acc{tag}{i}.example", owner=reps[i])
    return pool


@pytest.mark.parametrize(
    "changelist", ["admin:leads_lead_changelist", "admin:booking_idempotencykey_changelist",
                   "admin:leads_account_changelist"],
)  # fmt: skip
def test_admin_changelist_queries_do_not_grow_with_the_rows_shown(admin_client, changelist):
    """An operator opening the lead list (every booking page submission is a lead: 100,000 of them after two
    years), the idempotency-key list or the account list gets one page of 100 rows and, with it, one or more
    extra queries per row: the lead list ~4 per row (its rule, pool, booking and the booking's meeting type,
    `leads/admin.py` LeadAdmin has no list_select_related and all those keys are nullable, so Django's
    automatic select_related() skips them), the key list 2 per row (booking and its meeting type,
    `booking/admin.py` IdempotencyKeyAdmin), the account list 1 per row (owner, `leads/admin.py`
    AccountAdmin). A page should cost the same few queries whatever it shows."""
    _leads_idempotency_accounts(3, "a")
    few = _queries(admin_client, reverse(changelist))
    _leads_idempotency_accounts(30, "b")
    many = _queries(admin_client, reverse(changelist))
    assert many == few, f"{changelist}: {few} queries for 3 rows, {many} for 33"


def test_pool_page_queries_do_not_grow_with_its_members(admin_client):
    """The pool's change page (the page an operator uses to add a rep or change a weight) makes ~3 queries per
    member: each PoolMemberInline row prints its member (`PoolMember.__str__` reads rep and pool, the inline's
    queryset selects neither: `routing/admin.py` PoolMemberInline) and its rep autocomplete widget looks the
    selected rep up on its own. 200 members: ~600 queries for one page."""
    small = make_pool("first_available", [make_rep() for _ in range(3)])
    few = _queries(admin_client, reverse("admin:routing_pool_change", args=[small.pk]))
    big = make_pool("first_available", [make_rep() for _ in range(40)])
    many = _queries(admin_client, reverse("admin:routing_pool_change", args=[big.pk]))
    # one per member is left: the rep autocomplete box of each row reads its rep's label
    assert many - few <= 37 + 5, f"pool page: {few} queries with 3 members, {many} with 40"


def test_dashboard_queries_do_not_grow_with_withheld_reps(admin_client):
    """The insights dashboard's "unavailable now" list looks each withheld rep up with a query of its own
    (`insights/kpis.py` today_board: `PoolMember.objects.filter(rep_id=…).first().rep` in a loop). When the
    sync worker stops for a while every rep with a calendar is withheld at once: 200 reps, 200 more queries on
    the page an operator opens to see what is wrong."""

    def withheld(n):
        reps = [make_rep() for _ in range(n)]
        pool = make_pool("first_available", reps)
        for rep in reps:  # a calendar never synced: withheld
            conn = CalendarConnection.objects.create(rep=rep, provider="google", secret_blob="x")
            Calendar.objects.create(connection=conn, external_id=f"c{rep.pk}", blocks_availability=True)
        return pool

    params = {"start": "2026-02-01 00:00", "end": "2026-03-02 00:00"}
    with time_machine.travel(NOW, tick=False):
        pool = withheld(3)
        few = _queries(admin_client, "/insights/", {**params, "pool": pool.slug})
        withheld(30)
        many = _queries(admin_client, "/insights/", {**params, "pool": pool.slug})
    assert many == few, f"dashboard: {few} queries with 3 withheld reps, {many} with 33"


def test_deleting_a_booking_erases_the_prospect_from_the_outbox(clock, django_capture_on_commit_callbacks):
    """An operator deletes a booking to erase it (spam, or a prospect asking to be forgotten):
    docs/booking-api.md says "A deletion erases a booking as if it had never been made". Its delivered
    outbox rows stay, with `booking` set to NULL (`booking/models.py` OutboxMessage.booking is SET_NULL and
    `booking/services/delete.py` bookings_delete does not delete them), each payload holding the prospect's
    name, e-mail address, answers and note (`booking/emails.py` snapshot). Nothing ever purges delivered
    outbox rows, so the prospect's data stays in the outbox admin for good."""
    from booking.services import booking_cancel, booking_create
    from booking.services.delete import bookings_delete

    rep = make_rep("Ana")
    mt = make_meeting_type(make_pool("round_robin", [rep]), questions=[])
    with django_capture_on_commit_callbacks(execute=True):
        made = booking_create(
            meeting_type=mt, start=START, name="Erin Erase", email="erin@erase.example",
            timezone="Europe/Berlin", note="call my mobile",
        )  # fmt: skip
    body = made.body if hasattr(made, "body") else made
    booking = Booking.objects.get(prospect_email="erin@erase.example")
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(token=body["manage_token"])
    assert not OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).exists()

    bookings_delete(booking_ids=[booking.pk])

    assert not Booking.objects.filter(pk=booking.pk).exists()
    left = [m.pk for m in OutboxMessage.objects.all() if "erin@erase.example" in json.dumps(m.payload)]
    assert not left, f"deleted booking's prospect e-mail still in outbox rows {left}"


# --- PostgreSQL at two years of history ------------------------------------------------------------------


def _history(*, nreps: int, per_day: int, weeks: int, busy_per_rep: int):
    """``nreps`` reps in one pool; ``per_day`` 30-minute bookings every weekday for ``weeks`` weeks up to four
    weeks from NOW, inside working hours, each rep at most one a day; ``busy_per_rep`` synced busy rows per
    rep over the coming months, outside the bookings (so none needs attention)."""
    reps = [make_rep() for _ in range(nreps)]
    pool = make_pool("first_available", reps)
    mt = make_meeting_type(pool)
    base = NOW - dt.timedelta(weeks=weeks - 4) + dt.timedelta(hours=1)  # a Monday, 08:00 UTC
    day = f"((g / {per_day}) / 5 * 7 + (g / {per_day}) %% 5) * interval '1 day'"
    slot = f"((g %% {per_day}) %% 13) * interval '30 minutes'"
    with connection.cursor() as c:
        c.execute(
            "CREATE TEMP TABLE hs_reps AS SELECT ord - 1 AS i, id"
            " FROM unnest(%s::bigint[]) WITH ORDINALITY t(id, ord)",
            [[r.pk for r in reps]],
        )
        c.execute(
            f"""
            INSERT INTO booking_booking (meeting_type_id, pool_id, start, "end", status, prospect_name,
              prospect_email, prospect_timezone, answers, note, utm, visitor_id, decision, manage_token_hash,
              sequence, cancel_reason, created_at, updated_at)
            SELECT %(mt)s, %(pool)s, %(base)s + {day} + {slot},
                   %(base)s + {day} + {slot} + interval '30 minutes',
                   CASE WHEN g %% 10 = 0 THEN 'cancelled' ELSE 'confirmed' END, 'Prospect ' || g,
                   'p' || g || '@example.org', 'UTC', '{{}}', '', '{{}}', '', '{{}}', 'hs-' || g, 0, '',
                   %(base)s + {day} - interval '3 days', %(base)s + {day} - interval '3 days'
            FROM generate_series(0, %(n)s - 1) g
            """,
            {"mt": mt.pk, "pool": pool.pk, "base": base, "n": per_day * 5 * weeks},
        )
        c.execute(
            """
            INSERT INTO booking_bookinghost (booking_id, rep_id, role, blocked_start, blocked_end, active,
              assigned_at, released)
            SELECT b.id, r.id, '', b.start, b."end", b.status <> 'cancelled', b.created_at, ''
            FROM booking_booking b JOIN hs_reps r ON r.i = b.id %% %(nreps)s
            """,
            {"nreps": nreps},
        )
        c.execute(
            """
            INSERT INTO calendars_busyinterval (rep_id, start, "end", source, external_id, synced_at)
            SELECT r.id, %(day)s + (g / %(nreps)s / 5) * interval '1 day'
                   + (ARRAY[0, 2, 15, 17, 19])[1 + (g / %(nreps)s) %% 5] * interval '1 hour',
                   %(day)s + (g / %(nreps)s / 5) * interval '1 day'
                   + (ARRAY[0, 2, 15, 17, 19])[1 + (g / %(nreps)s) %% 5] * interval '1 hour'
                   + interval '45 minutes',
                   'calendar', 'c1:' || g, %(day)s
            FROM generate_series(0, %(n)s - 1) g JOIN hs_reps r ON r.i = g %% %(nreps)s
            """,
            {"day": NOW.replace(hour=0), "n": busy_per_rep * nreps, "nreps": nreps},
        )
        c.execute("DROP TABLE hs_reps")
        c.execute("ANALYZE")
    return reps, pool


@pytest.mark.postgres
def test_needs_attention_count_stays_fast_with_two_years_of_history():
    """An operator opens the KPI dashboard (it counts the bookings needing attention on every load) or clicks
    the booking list's "needs attention: any reason" filter (also the link the rep page shows after a save).
    With the brief's team (200 reps, two years of bookings: ~100,000, of which ~3,600 upcoming; 1,000 synced
    busy rows per rep; nothing needing attention) the count alone takes ~6 s and the list page, which runs
    it three times (count, date hierarchy, rows), 20-40 s. `booking/selectors.py` bookings_needing_attention
    puts the reasons, OR'ed, in a host-row subquery that is not limited to upcoming confirmed bookings
    (`hosts = BookingHost.objects.filter(condition, booking=OuterRef("pk"), active=True)`), so at this size
    PostgreSQL hash-joins every active host row of the whole history and runs the busy / time-off / removed
    sub-plans for each of them (~90,000 probes of the rep's busy rows; the plan is chosen by statistics: with
    the busy rows stored in time order, as incremental syncs add them, it is this one; stored rep by rep, a
    nested loop over the upcoming bookings, 0.1 s). Only upcoming bookings can need
    attention; the count should take well under 2 s (here it is cut off at 2 s by a statement timeout)."""
    from django.db import OperationalError, transaction

    from booking.selectors import bookings_needing_attention

    _history(nreps=200, per_day=192, weeks=104, busy_per_rep=1000)
    assert Booking.objects.filter(status="confirmed", end__gt=NOW).count() < 4000
    query = bookings_needing_attention(Booking.objects.all(), now=NOW)
    began = time.monotonic()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = '2s'")
            found = query.count()
    except OperationalError:
        found = None
    took = time.monotonic() - began
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
    assert found == 0, f"counting the bookings that need attention took {took:.1f} s (cut off at 2 s)"
