"""Who may do what: reps sign in without staff status, and staff status alone neither records outcomes on
others' bookings nor opens the insights pages; account owners are learned from meetings that took place,
not from any address typed into the booking form; the e-mail snippet counts against the read limit. Each
test failed before its fix (its docstring says what an attacker gained)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.shortcuts import resolve_url
from django.test import Client
from rest_framework.test import APIClient

from booking.models import Booking
from leads.models import Lead
from routing.models import Rep
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.foundation.conftest import book_demo

User = get_user_model()


# --- 1. reps must be staff to sign in, and staff is all it takes to act on every booking --------------------


def _rep_user(rep: Rep, username: str, password: str, **flags):
    user = User.objects.create_user(username, f"{username}@example.com", password, **flags)
    Rep.objects.filter(pk=rep.pk).update(user=user)
    return user


@pytest.mark.django_db
def test_a_rep_who_is_not_staff_can_sign_in_to_their_calendar_page(clock):
    """``/calendars/`` is ``login_required`` with ``LOGIN_URL = /admin/login/``, the only login view Baton
    has, and the admin's login form refuses every user who is not staff. So a rep can reach their calendar
    page only once an administrator ticks "staff status" on their login (the tests of that page use
    ``force_login`` and never saw it). Staff status is exactly what ``booking_for_outcome`` and the
    ``staff_member_required`` insights pages trust (next test): every rep who connects a calendar can then
    record (or overwrite) the outcome and deal value of any booking of any rep and read the KPI dashboard
    with every prospect's name. A rep must be able to sign in without being staff."""
    rep = make_rep("Dana")
    _rep_user(rep, "dana", "pw-dana-123")
    client = Client()
    first = client.get("/calendars/")
    assert first.status_code == 302 and first["Location"].startswith(resolve_url(django_settings.LOGIN_URL))
    client.post(first["Location"], {"username": "dana", "password": "pw-dana-123", "next": "/calendars/"})
    page = client.get("/calendars/")
    assert page.status_code == 200, "a rep who is not staff cannot sign in to connect a calendar"


def test_staff_status_alone_neither_records_outcomes_of_others_nor_reads_insights(demo, clock):
    """The rep of the previous test, given the staff status they need to sign in and no permission at all,
    is treated as an administrator by two checks that look at ``is_staff`` alone:

    * ``booking.selectors.booking_for_outcome`` (``POST /api/v1/bookings/id/<id>/outcome``): the rep
      records "lost" (or "won" with any amount, or a no-show) on a colleague's booking, which moves the
      colleague's fairness tallies and performance weighting (more leads for themselves), while the admin's
      own outcome actions need the *change booking* permission;
    * ``insights.views`` (``staff_member_required``): the dashboard and its CSV export of today's meetings
      with every prospect's name, every rep's bookings and revenue, though the rep may not even view
      bookings in the admin.

    Fix: check model permissions (``booking.change_booking`` for outcomes of bookings one does not host,
    ``booking.view_booking`` for the insights pages), not ``is_staff``."""
    booking = Booking.objects.get(pk=book_demo(APIClient())["id"])
    host_ids = set(booking.hosts.filter(active=True).values_list("rep_id", flat=True))
    other = Rep.objects.exclude(pk__in=host_ids).order_by("pk").first()
    user = _rep_user(other, "eve", "pw-eve-123", is_staff=True)  # staff: only so that she can sign in
    assert not user.get_all_permissions()

    clock.move_to(booking.start - dt.timedelta(hours=1))  # the meeting is today
    client = Client()
    client.force_login(user)
    query = {
        "pool": booking.pool.slug,
        "start": "2026-02-01 00:00",
        "end": "2026-03-04 00:00",
        "table": "meetings",
    }
    export = client.get("/insights/", query)
    leaked = export.status_code == 200 and booking.prospect_name in export.content.decode()

    clock.move_to(booking.end + dt.timedelta(hours=1))
    api = APIClient()
    api.force_login(user)
    outcome = api.post(f"/api/v1/bookings/id/{booking.pk}/outcome", {"kind": "lost"}, format="json")
    booking.refresh_from_db()

    problems = []
    if outcome.status_code != 404 or booking.status != Booking.Status.CONFIRMED:
        problems.append(f"recorded an outcome on another rep's booking ({outcome.status_code})")
    if leaked:
        problems.append("exported today's meetings with the prospects' names from /insights/")
    assert not problems, f"a rep with staff status and no permission {problems}"


# --- 2. account ownership learned from any e-mail address typed into the public booking form ---------------


@pytest.mark.django_db
def test_an_unverified_booking_does_not_make_its_host_the_owner_of_a_company_domain(clock):
    """With ``BATON_LEARN_OWNERS`` (default on) the owner backend (``leads/owners.py`` ``_history_owner``)
    takes the host of the latest *confirmed* booking by anyone "at" a company domain as that company's
    account owner, and ``account_owner`` rules then hand every later lead of the domain to that rep only.
    The address is whatever the public booking API was given; nothing proves it. Anyone on the internet
    (a rep's friend, a rep themself, a competitor) books once as ``nobody@bigcorp.io`` at a time only the
    chosen rep is free, ideally far ahead so that it stays "latest", and from then on every real lead from
    bigcorp.io is routed to that rep (or, for sabotage, to the wrong one), with the other reps' times never
    offered. Learning should at least wait for a meeting that was held (an outcome recorded by staff or
    the host), or stay with the reviewed ``learn_account_owners`` command."""
    from tests.foundation.test_foundation_fourth_looks import fake_bigcorp_booking

    fake_bigcorp_booking()
    api = APIClient()

    real = {"email": "cfo@bigcorp.io", "name": "Real Buyer", "timezone": "Europe/Berlin"}
    routed = api.post("/api/v1/meeting-types/sales-demo/route", real, format="json")
    assert routed.status_code == 200, routed.content
    owner = Lead.objects.get(email="cfo@bigcorp.io").decision["owner"]
    assert not owner.get("used"), (
        f"the real bigcorp.io lead was routed to the rep an anonymous booking chose: {owner}"
    )


# --- 3. the email snippet computes slots with no rate limit ------------------------------------------------


@pytest.mark.django_db
def test_the_email_snippet_is_rate_limited_like_the_slots_api(clock, settings):
    """``GET /book/<slug>/email-snippet`` (``booking/embed.py``) is a plain Django view: it computes the
    offered slots of the whole pool (``selectors.slots_for_days``, up to 14 days), exactly what the slots
    API does, but without ``ReadRateThrottle``. ``API_READ_RATE_LIMIT`` exists because slot computation
    is the API's most expensive answer (docs/booking-api.md); an anonymous client gets unlimited
    slot computations through the snippet URL instead and can keep the web workers busy (denial of service).
    """
    settings.API_READ_RATE_LIMIT = "2/min"
    cache.clear()
    pool = make_pool("first_available", [make_rep("Ana"), make_rep("Ben")])
    make_meeting_type(pool, slug="snip")
    client = Client()
    api = [client.get("/api/v1/meeting-types/snip/slots").status_code for _ in range(3)]
    assert api == [200, 200, 429]  # the API is limited
    snippet = [client.get("/book/snip/email-snippet", {"days": "14"}).status_code for _ in range(3)]
    assert snippet[-1] == 429, f"email snippet answered {snippet} past API_READ_RATE_LIMIT"
