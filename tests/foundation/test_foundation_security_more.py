"""Who can see and do what across the product (rep pages and sign-in, admin, insights, the public API's
limits, what ends up in e-mails and logs), beyond ``test_foundation_permissions.py`` and
``test_foundation_security.py`` (found by a hunting helper; each test above the pins failed before its
fix)."""

from __future__ import annotations

import logging
import socket

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.test import Client
from rest_framework.test import APIClient

from booking.models import Booking, OutboxMessage
from leads.models import Lead
from tests.foundation.conftest import book_demo

User = get_user_model()

# the demo's meeting type with routing rules (docs: demo/baton.yaml) and a submission its rule routes
ROUTED = "/api/v1/meeting-types/enterprise-consultation/route"
ROUTED_BODY = {
    "email": "cfo@bigcorp.io",
    "name": "Real Buyer",
    "timezone": "Europe/Berlin",
    "answers": {"company_size": "1000+", "phone": "+49 30 1234567"},
}


def _staff(username: str, *codenames: str):
    user = User.objects.create_user(username, f"{username}@example.com", "pw-staff-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


# --- 1. the rep's secret ICS address is mailed to ADMINS with any server error of "Add ICS feed" -----------


def test_a_server_error_adding_an_ics_feed_does_not_mail_the_secret_feed_address(
    rep_client, mailoutbox, monkeypatch
):
    """The secret iCal address a rep pastes on ``/calendars/`` is a credential: whoever has it reads every
    event of the rep's calendar (titles, attendees, notes). Baton stores it encrypted and shows only its host
    (``feed_label``: "the path and query are the secret"). But ``calendars.views.ics_add`` is not marked
    ``sensitive_post_parameters("url")`` (nor its frames ``sensitive_variables``), so when anything fails with
    a 500 while the feed is added (here the database drops the connection as the connection row is written)
    Django's error report mails the request's POST, the secret URL included, to everyone in ``ADMINS``, into
    their mail archives (the manage token got the same treatment: ``RedactingExceptionReporter``).
    Fix: ``@sensitive_post_parameters("url")`` on ``ics_add`` (and ``sensitive_variables`` where the URL or
    OAuth secrets are locals), or have ``RedactingExceptionReporter`` cleanse them."""
    from calendars.services import connections

    monkeypatch.setattr(connections.IcsProvider, "list_calendars", lambda self: [])

    def database_down(**kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(connections, "connection_create", database_down)
    secret = "private-9f8e7d6c5b4a39281706"
    url = f"https://calendar.example.com/calendar/ical/dana%40work.example/{secret}/basic.ics"
    answer = rep_client.post("/calendars/connect/ics", {"url": url})
    assert answer.status_code == 500
    reports = [m for m in mailoutbox if "server closed the connection" in m.body]
    assert reports, "no error report was mailed to ADMINS"
    texts = [t for m in reports for t in (m.subject, m.body, *(alt[0] for alt in m.alternatives))]
    leaked = any(secret in text for text in texts)
    assert not leaked, "the rep's secret ICS address is in the e-mail to ADMINS"


# --- 2. rep logins accept the most common passwords ---------------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop"])
def test_a_rep_login_cannot_be_given_a_common_or_all_numeric_password(password):
    """Reps sign in on Baton's own, internet-facing page (``/accounts/login/``) with a login an admin
    creates in the admin, whose password forms (and ``manage.py changepassword``) check
    ``AUTH_PASSWORD_VALIDATORS``. ``config/settings.py`` lists only the similarity and minimum-length
    validators: Django's ``CommonPasswordValidator`` and ``NumericPasswordValidator`` (in every project
    ``startproject`` makes) were left out, so "password" or "12345678" is accepted for a login that can
    record outcomes on the rep's bookings and connect calendars, and nothing slows down guessing it
    (next test). Fix: add both validators back."""
    with pytest.raises(ValidationError):
        validate_password(password, User(username="dana", email="dana@example.com"))


# --- 3. the rep sign-in page is an unlimited password-guessing oracle ---------------------------------------


@pytest.mark.django_db
def test_the_rep_sign_in_page_limits_password_guessing(settings):
    """``/accounts/login/`` is Django's plain ``LoginView``: every public POST of the API is limited per
    client address (``BOOKING_RATE_LIMIT``, 30/min by default, docs/booking-api.md) but the sign-in form
    answers wrong passwords for a rep's username as fast and as often as a client sends them (and, next to
    the missing common-password check, a dictionary attack is a matter of minutes). A demanding
    operator expects repeated failures from one client to be refused (429) after a bounded number of tries.
    Fix: count failed sign-ins per client address and username (the booking POST limit's rate, or its own
    setting) and answer 429 past it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # a fast test only
    settings.BOOKING_RATE_LIMIT = "30/min"
    cache.clear()
    User.objects.create_user("dana", "dana@example.com", "the-right-one-123")
    client = Client()
    codes = [
        client.post("/accounts/login/", {"username": "dana", "password": f"guess-{i}"}).status_code
        for i in range(60)
    ]
    assert 429 in codes, f"60 wrong passwords in a row for one username, none refused: {sorted(set(codes))}"


# --- 4. the insights pages and their CSV exports may be stored by the browser and proxies -------------------


def test_the_insights_pages_and_exports_are_not_cached(demo, clock):
    """``/insights/`` and its CSV export (``table=meetings``: every meeting today with the prospect's name)
    and ``/insights/simulator/`` are the staff's pages (docs/insights.md: "the pages show prospects' names
    and every rep's revenue"). The admin's pages are all ``never_cache`` (``Cache-Control: no-store …,
    private``); these are answered with no ``Cache-Control`` at all, so the browser keeps them in its
    disk cache (Back or history after signing out on a shared computer shows them) and a caching proxy may
    store them. The manage pages got ``no-store`` for the same reason. Fix: ``never_cache`` on
    ``insights.views.dashboard`` and ``simulator``."""
    book_demo(APIClient())
    client = Client()
    client.force_login(_staff("analyst", "view_booking"))
    query = "pool=fast-lane&start=2026-02-01+00:00&end=2026-03-04+00:00"
    unprotected = []
    for path in ("/insights/", f"/insights/?{query}&table=meetings", "/insights/simulator/"):
        response = client.get(path)
        assert response.status_code == 200, path
        cache_control = response.headers.get("Cache-Control", "")
        if "no-store" not in cache_control and "private" not in cache_control:
            unprotected.append(f"{path}: Cache-Control {cache_control!r}")
    assert not unprotected, unprotected


# --- 5. one IPv6 client escapes the per-client limits by changing its address -------------------------------


@pytest.mark.django_db
def test_clients_of_one_ipv6_subnet_share_the_rate_limit(settings):
    """The public API's limits are per client address (``booking.api.throttles``: DRF's ``get_ident``,
    the whole address). Over IPv6 every client, down to a home connection, is given at least a /64 and
    picks any of its 2^64 addresses for each request (privacy addresses do so on their own), so one client
    gets ``API_READ_RATE_LIMIT`` (or the booking POST limit) per request and is never limited: the slot
    computations the read limit exists for (docs/booking-api.md) are unlimited again. Fix: key IPv6
    clients by their /64 (``ipaddress.ip_network(f"{addr}/64", strict=False)``)."""
    settings.API_READ_RATE_LIMIT = "3/min"
    cache.clear()
    client = APIClient()
    codes = [
        client.get("/api/v1/meeting-types", REMOTE_ADDR=f"2001:db8:1234:5678::{i + 1:x}").status_code
        for i in range(5)
    ]
    assert codes[-1] == 429, f"five addresses of one /64: {codes}"


# --- 6. the webhook address nurture leads go to is written into logs and the admin --------------------------


@pytest.mark.django_db
def test_a_failed_nurture_delivery_does_not_record_the_webhook_address(settings, caplog):
    """``BATON_NURTURE_WEBHOOK_URL`` is how disqualified leads reach the nurture tool, and Baton sends it
    nothing else to authenticate with (no signing secret, no header): for the usual receivers (Zapier,
    Make, n8n, a CRM's catch hook) the address's path is the credential that lets anyone post leads into
    the CRM. When a delivery fails, ``leads.outbox.nurture_webhook``'s exception (``requests``' text
    names the full URL: "Max retries exceeded with url: /hooks/…", "404 … for url: https://…") is written
    into ``OutboxMessage.last_error``, shown to every staff user who may view outbox messages, and logged
    at WARNING. Fix: record the error's kind and status with the host only (as ``feed_label`` does for
    ICS URLs)."""
    from booking import outbox

    secret = "catch-4711-9c2b7e1f0a"
    row = OutboxMessage.objects.create(
        event="lead.disqualified", handler="leads.nurture_webhook", payload={"event": "lead.disqualified"}
    )
    with socket.socket() as closed, caplog.at_level(logging.WARNING):
        closed.bind(("127.0.0.1", 0))  # bound, never listening: the receiver is down
        port = closed.getsockname()[1]
        settings.BATON_NURTURE_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks/{secret}/"
        assert outbox.deliver(message_id=row.pk) == "retry"
    row.refresh_from_db()
    places = (("last_error", row.last_error), ("log", caplog.text))
    leaks = [where for where, text in places if secret in text]
    assert not leaks, f"the nurture webhook's secret path is in the outbox row's {leaks}: {row.last_error!r}"


# --- 7. staff who may only view are offered the hand-routing and reassign they are refused ------------------


def test_view_only_staff_are_not_offered_route_by_hand_or_reassign(demo, clock):
    """The booking list's actions declare ``permissions=["change"]``, so a staff user who may only view
    bookings is never offered them. The leads' "Route the selected lead by hand…" action declares none, the
    lead's page links "Route this lead by hand…" and the booking's page links "Reassign…" to everyone: a
    view-only user (an analyst, a rep given read access) picks them and is answered 403 Forbidden by the
    pages behind them (``route_view``/``reassign_view`` check the change permission). Fix:
    ``permissions=["change"]`` on ``LeadAdmin.route_by_hand_action`` and show both links only with
    ``has_change_permission``."""
    booking = Booking.objects.get(pk=book_demo(APIClient())["id"])
    assert APIClient().post(ROUTED, ROUTED_BODY, format="json").status_code == 200
    lead = Lead.objects.get(email="cfo@bigcorp.io")
    client = Client()
    client.force_login(_staff("viewer", "view_lead", "view_booking"))

    offered = []
    if "route_by_hand_action" in client.get("/admin/leads/lead/").content.decode():
        offered.append("the route-by-hand action on the lead list")
    if "Route this lead by hand" in client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode():
        offered.append("the route-by-hand link on the lead's page")
    if "/reassign/" in client.get(f"/admin/booking/booking/{booking.pk}/change/").content.decode():
        offered.append("the Reassign… link on the booking's page")
    refused = client.get(f"/admin/leads/lead/{lead.pk}/route/").status_code
    assert refused == 403  # what picking them leads to
    assert not offered, f"a view-only user is offered {offered}, each a 403"


# Pins of behaviour that held ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_pin_the_rep_sign_in_never_redirects_off_site(target):
    """``/accounts/login/?next=…`` (the link reps follow to their calendar page) sends a signed-in rep only
    to a path of this site: another host in ``next`` would turn Baton's sign-in into a phishing relay."""
    User.objects.create_user("dana", "dana@example.com", "the-right-one-123")
    answer = Client().post(
        "/accounts/login/", {"username": "dana", "password": "the-right-one-123", "next": target}
    )
    assert answer.status_code == 302 and answer["Location"] == "/calendars/", answer["Location"]


@pytest.mark.django_db
def test_pin_view_only_staff_cannot_retry_dead_outbox_messages():
    """The outbox's "Retry" (``booking.admin_outbox``) asks for the change permission: a staff user who may
    only view outbox messages, posting the action by hand, puts no dead message back to pending (each
    retry re-sends e-mails and calendar writes)."""
    dead = OutboxMessage.objects.create(
        event="booking.confirmed", handler="email.prospect", status="dead", attempts=12, last_error="down"
    )
    client = Client()
    client.force_login(_staff("viewer", "view_outboxmessage"))
    assert client.get("/admin/booking/outboxmessage/").status_code == 200  # may look
    client.post("/admin/booking/outboxmessage/", {"action": "retry", "_selected_action": [dead.pk]})
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("dead", 12)
