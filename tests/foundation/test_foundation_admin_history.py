"""The admin as an administrator uses it, with a realistic history (a crawl of every admin page as a
superuser and as view-only staff, on SQLite and PostgreSQL): a rep's and a booking's pages and their delete
confirmations run no query per row of their history, a date bar's odd year is an invalid lookup, and a NUL
in an admin link is a 400 (not a 500 on PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from booking.models import BookingHost, MeetingType
from calendars.models import TimeOff
from routing.models import LedgerEntry, PoolMember, Rep
from tests.booking.booking_factories import bulk_bookings

pytestmark = pytest.mark.django_db

PAST = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)


def queries(client, url: str) -> int:
    """How many queries opening ``url`` runs (the page must open)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


@pytest.fixture
def superuser_client(db, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client(raise_request_exception=False)  # a 500 is a status here, as a browser sees it
    client.force_login(user)
    return client


def _rep(name: str) -> Rep:
    return Rep.objects.create(name=name, email=f"{name.lower()}@example.com", timezone="Europe/Berlin")


# --- pages that run a query per row of a history ------------------------------------------------------------


def test_a_reps_page_does_not_run_a_query_per_time_off_entry(superuser_client, demo):
    """The rep's change page lists the rep's time off (``TimeOffInline``). Each row of a tabular inline is
    labelled ``str(TimeOff)``, which reads ``self.rep.name``, and the inline's rows do not hold their rep: one
    query per time-off entry. Time off accumulates (every holiday, sick day and training of the years a rep
    works here: 50 entries is two years), so the page admins open to edit hours runs 50 more queries, as the
    pool memberships on the same page did before they were joined (``MembershipInline.get_queryset``)."""
    rep = _rep("Tara")
    url = reverse("admin:routing_rep_change", args=[rep.pk])

    def take_time_off(first: int, count: int) -> None:
        TimeOff.objects.bulk_create(
            TimeOff(rep=rep, start=day, end=day + dt.timedelta(hours=8))
            for day in (PAST + dt.timedelta(days=7 * n) for n in range(first, first + count))
        )

    take_time_off(0, 5)
    few = queries(superuser_client, url)
    take_time_off(100, 45)
    many = queries(superuser_client, url)
    assert many <= few + 2, f"rep with 5 time-off entries: {few} queries; with 50: {many}"


def test_a_bookings_page_does_not_run_a_query_per_host_row(superuser_client, demo):
    """The booking's change page lists its host rows (``BookingHostInline``: every host it had, the active
    ones and those released by a reassignment or a reschedule that routed it again). Each row shows its rep
    (a read-only foreign key) and a change link labelled ``str(BookingHost)`` (the rep's name), and the
    inline's queryset does not join the rep: one query per host row. A group booking (an AE and an SE)
    reassigned a few times has a dozen rows; the pool page's member rows were joined for the same reason."""
    meeting_type = MeetingType.objects.get(slug="technical-deep-dive")
    reps = list(Rep.objects.order_by("pk"))
    few_rows, many_rows = bulk_bookings(meeting_type, reps[:1], [PAST, PAST + dt.timedelta(days=1)])

    def released(booking, count: int) -> None:
        BookingHost.objects.bulk_create(
            BookingHost(
                booking=booking,
                rep=rep,
                blocked_start=booking.start,
                blocked_end=booking.end,
                active=False,
                released=BookingHost.Released.REASSIGNED,
                assigned_at=booking.start,
            )
            for rep in reps[1 : 1 + count]
        )

    released(few_rows, 1)
    released(many_rows, 7)
    assert (few_rows.hosts.count(), many_rows.hosts.count()) == (2, 8)
    few = queries(superuser_client, reverse("admin:booking_booking_change", args=[few_rows.pk]))
    many = queries(superuser_client, reverse("admin:booking_booking_change", args=[many_rows.pk]))
    assert many <= few + 2, f"booking with 2 host rows: {few} queries; with 8: {many}"


def test_deleting_a_rep_does_not_run_a_query_per_ledger_entry(superuser_client, demo):
    """A rep who leaves is deleted in the admin (``RepAdmin`` lets a superuser delete a rep; the ledger
    entries go with the rep: ``DeletedWithIt``). The confirmation page lists what goes with the rep, each
    ledger entry as ``str(LedgerEntry)``, which reads the entry's pool (and rep): one query per entry. Two
    years in a busy pool are thousands of entries, so the confirmation page of a departing rep runs
    thousands of queries (with 50 entries, 45 more than with 5) before it shows."""
    pool = MeetingType.objects.get(slug="demo").pool

    def leaver(name: str, entries: int) -> str:
        rep = _rep(name)
        PoolMember.objects.create(pool=pool, rep=rep)
        LedgerEntry.objects.bulk_create(
            LedgerEntry(pool=pool, rep=rep, kind=LedgerEntry.Kind.ADJUSTED, delta=1, reason="history")
            for _ in range(entries)
        )
        return reverse("admin:routing_rep_delete", args=[rep.pk])

    few = queries(superuser_client, leaver("Lena", 5))
    many = queries(superuser_client, leaver("Lars", 50))
    assert many <= few + 2, f"rep with 5 ledger entries: {few} queries; with 50: {many}"


# --- odd links ---------------------------------------------------------------------------------------------

DATE_BARS = [  # the lists with a date bar (``date_hierarchy``) and its field
    ("booking_booking", "start"),
    ("booking_outboxmessage", "created_at"),
    ("leads_lead", "created_at"),
    ("routing_ledgerentry", "created_at"),
    ("calendars_busyinterval", "start"),
    ("calendars_dateoverride", "date"),
    ("calendars_busyhistory", "removed_at"),
]


@pytest.mark.parametrize("year", ["9999", "99999999999999999999"])
def test_a_date_bar_link_of_an_odd_year_is_not_a_500(superuser_client, demo, year):
    """Every list with a date bar takes its year, month and day from the link (``?start__year=2026``); a
    hand-edited or mangled one with a year Django cannot turn into a date is a 500 on all seven of them:
    the year 9999 (Django computes the end of the year, 10000-01-01: ValueError outside the admin's own
    check) and a year of 20 digits (OverflowError, which the admin's check does not catch either). A month
    of 13 or a 30 February shows the list with "invalid lookup" (``?e=1``); so should these (the attention
    filter's rep parameter is handled the same way: ``booking.admin_attention._rep_id``)."""
    broken = []
    for name, field in DATE_BARS:
        response = superuser_client.get(reverse(f"admin:{name}_changelist"), {f"{field}__year": year})
        if response.status_code >= 500:
            broken.append(name)
    assert not broken, f"?…__year={year} is a 500 on: {', '.join(broken)}"


NUL_LINKS = [
    ("/admin/booking/booking/", {"status__exact": "\x00"}),
    ("/admin/routing/rep/", {"timezone__exact": "\x00"}),
    ("/admin/routing/ledgerentry/", {"kind__exact": "\x00"}),
    ("/admin/booking/outboxmessage/", {"handler__exact": "\x00"}),
    (
        "/admin/autocomplete/",
        {"app_label": "booking", "model_name": "meetingtype", "field_name": "pool", "term": "a\x00"},
    ),
]


NUL_IDS = ["booking-status", "rep-timezone", "ledger-kind", "outbox-handler", "autocomplete-term"]


@pytest.mark.postgres
@pytest.mark.parametrize("url,params", NUL_LINKS, ids=NUL_IDS)
def test_a_nul_in_a_filter_link_or_autocomplete_term_is_not_a_500(superuser_client, demo, url, params):
    """PostgreSQL stores no NUL (U+0000) in text and refuses one in a query's parameter. A list filter's value
    (``?status__exact=%00``, from a mangled or hand-edited link) and the term typed into an autocomplete box
    go into the query as they are: a 500 on PostgreSQL (the list's own search box refuses a NUL; the booking
    API says "Null characters are not allowed.": ``tests/booking/test_booking_nul.py``). It should be the
    list with "invalid lookup", a 400 or no match, not a server error mailed to the admins."""
    response = superuser_client.get(url, params)
    assert response.status_code < 500, f"{url} with a NUL in {sorted(params)}: {response.status_code}"
