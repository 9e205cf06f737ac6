"""Connecting calendars and keeping them connected: OAuth flows on the rep's page, the Microsoft identity
platform answering 5xx, the rep's ICS form, push channels of calendars deleted in the admin, and one account
connected by two reps (found by a hunting helper; each test failed before its fix)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
import requests
import time_machine
from django.contrib.auth import get_user_model

from calendars.models import Calendar, CalendarConnection
from calendars.providers import microsoft_auth
from calendars.services.sync import calendar_sync
from calendars.services.watches import watch_ensure
from tests.calendars.calendars_harness import primary

pytestmark = pytest.mark.django_db
MS_TOKEN = ".*/oauth2/v2.0/token"
SIGN_IN_DOWN = b"<html><body>Service Unavailable</body></html>"


@pytest.fixture
def rep_client(rep_client):
    rep_client.raise_request_exception = False  # a server error is an answer to assert on, not a test crash
    return rep_client


@pytest.fixture
def fresh_msal_cache(monkeypatch):
    """MSAL keeps the authority's discovery documents in a process-wide dict: start from an empty one, so
    a fake server on a reused loopback port cannot be answered from an earlier test's cache."""
    monkeypatch.setattr(microsoft_auth, "_HTTP_CACHE", {})


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- the Microsoft identity platform answering 5xx (MSAL raises MsalServiceError, not a requests error)


def test_a_microsoft_sign_in_outage_fails_the_sync_instead_of_crashing_it(make_rep, ms_connection, fake_ms):
    """docs/calendars.md, *Failure handling*: "provider down, 5xx …: calendar ``last_error``, connection
    ``error``; the last synced busy times stay in force …; the next poll retries". When the Microsoft
    token endpoint answers 503 while an access token is refreshed, MSAL 1.39 raises
    ``msal.exceptions.MsalServiceError`` (its ``raise_for_status``), which
    ``MicrosoftProvider._access_token`` does not catch (only ``requests.RequestException``). The exception
    leaves ``calendar_sync`` (and the Celery task): no ``last_error``, the connection still shows
    "connected" in the admin, and after the staleness bound the rep is silently withheld with nothing
    saying why. The same exception makes the rep's *Refresh* button and the renewal sweep crash."""
    rep = make_rep()
    cal = primary(ms_connection(rep))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.expire_access_tokens()
    fake_ms.add_fault("POST", MS_TOKEN, status=503, times=-1, body=SIGN_IN_DOWN)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):  # MSAL's cached token expires
        outcome = calendar_sync(calendar_id=cal.pk)
    assert outcome == "failed"
    conn = CalendarConnection.objects.get(pk=cal.connection_id)
    assert conn.status == CalendarConnection.Status.ERROR and conn.last_error
    assert Calendar.objects.get(pk=cal.pk).last_error


def test_disconnecting_a_microsoft_calendar_works_while_microsoft_sign_in_is_down(
    rep_client, ms_connection, fake_ms, push
):
    """*Disconnect* "stops push channels and removes the connection, its calendars and their busy times";
    stopping the channels is best effort (``connection_delete`` → ``_watch_stop_quietly``). With the
    Microsoft token endpoint answering 503, deleting the Graph subscription needs a fresh token, MSAL raises
    ``MsalServiceError``, ``_watch_stop_quietly`` only catches ``CalendarError``, and the rep's click on
    "Yes, disconnect" is a 500: the connection, its calendars and their busy times all stay, and the rep
    cannot get rid of the account until Microsoft recovers."""
    conn = ms_connection(rep_client.rep)
    cal = primary(conn)
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    fake_ms.expire_access_tokens()
    fake_ms.add_fault("POST", MS_TOKEN, status=503, times=-1, body=SIGN_IN_DOWN)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):
        answer = rep_client.post(f"/calendars/{conn.pk}/disconnect")
    assert answer.status_code == 302
    assert not CalendarConnection.objects.filter(pk=conn.pk).exists()


def test_connect_microsoft_while_sign_in_is_down_is_a_message_not_a_500(
    rep_client, fake_ms, fresh_msal_cache
):
    """*Connect Microsoft 365* builds MSAL's app, which reads the authority's OpenID configuration. When
    login.microsoftonline.com answers 503, MSAL raises ``MsalServiceError``; ``microsoft_auth.msal_app``
    maps only ``requests.RequestException`` and ``ValueError`` to ``ProviderUnavailable``, so the rep's
    click is a 500 page (and an admin traceback e-mail) instead of the calendar page saying Microsoft's
    sign-in is unavailable, as every other provider failure on this page does."""
    fake_ms.add_fault("GET", ".*/.well-known/openid-configuration", status=503, times=-1, body=SIGN_IN_DOWN)
    answer = rep_client.post("/calendars/connect/microsoft")
    assert answer.status_code == 302 and answer["Location"] == "/calendars/"
    page = rep_client.get("/calendars/").content.decode()
    assert "unavailable" in page


def test_a_microsoft_callback_while_the_token_endpoint_is_down_is_a_message_not_a_500(
    rep_client, fake_ms, fresh_msal_cache
):
    """The rep consented at Microsoft and comes back to Baton, but redeeming the code meets a 503 from the
    token endpoint. ``microsoft_auth.finish_flow`` catches only ``ValueError`` around
    ``acquire_token_by_auth_code_flow``; MSAL's ``MsalServiceError`` escapes the callback view: a 500
    after the consent screen, where the rep should be back on their calendar page told to try again."""
    fake_ms.add_user("dana@contoso.example")
    start = rep_client.post("/calendars/connect/microsoft")
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    fake_ms.add_fault("POST", MS_TOKEN, status=503, times=-1, body=SIGN_IN_DOWN)
    done = rep_client.get(path_and_query(consent.headers["Location"]))
    assert done.status_code == 302 and done["Location"] == "/calendars/"
    assert not CalendarConnection.objects.exists()


# --- the rep's ICS form


def test_an_ics_address_with_a_broken_ipv6_host_is_refused_not_a_500(rep_client):
    """A rep pasting a malformed address such as ``https://[::1/feed.ics`` (an unclosed IPv6 bracket) into
    *Add ICS feed* gets a 500: ``urlsplit`` raises ``ValueError("Invalid IPv6 URL")`` in
    ``providers.ics.normalise_url``, outside the checks that turn other bad addresses into
    ``InvalidFeed``, and ``views.ics_add`` only catches ``CalendarError``. Expected: the form comes back
    (400) with a field message, like ``ftp://nope`` or a bad port."""
    answer = rep_client.post("/calendars/connect/ics", {"url": "https://[::1/feed.ics"})
    assert answer.status_code == 400
    assert b"URL" in answer.content
    assert not CalendarConnection.objects.exists()


# --- push channels


def test_deleting_a_calendar_in_the_admin_stops_its_push_channel(
    admin_client, make_rep, google_connection, fake_google, push
):
    """Calendars → Calendars in the admin offers *Delete* (``CalendarAdmin`` does not forbid it). Deleting a
    blocking calendar there removes the row and its busy times (the ``pre_delete`` receiver), but not its
    Google push channel: the channel keeps pushing every change of that calendar to Baton, unknown (404),
    for up to 7 days. Every other way a calendar or connection leaves Baton (Disconnect, the connection's or
    the rep's admin delete, the calendar leaving the account's list) stops the channel first; this one
    should too (or the admin should not offer the delete)."""
    cal = primary(google_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    cal.refresh_from_db()
    assert cal.watch_channel_id in fake_google.channels
    answer = admin_client.post(f"/admin/calendars/calendar/{cal.pk}/delete/", {"post": "yes"})
    if answer.status_code == 403:  # the admin refusing the delete is a fix too
        return
    assert answer.status_code == 302 and not Calendar.objects.filter(pk=cal.pk).exists()
    assert cal.watch_channel_id not in fake_google.channels, "the deleted calendar's channel still pushes"


# --- one account, two reps


def test_a_rep_cannot_connect_an_account_another_rep_has_connected(
    client, make_rep, google_connection, fake_google
):
    """Bob, on a shared browser still signed in to Ana's Google account, clicks *Connect Google Calendar*:
    ``services.connection_create`` looks for an existing connection of *this* rep only, so Baton stores a
    second connection to Ana's account under Bob. Ana's primary calendar then becomes Bob's blocking and
    receiving calendar: Bob's bookings are written into Ana's calendar (Ana as organiser, invitations sent
    from her address), and since sync ignores Baton-written events, Bob's meetings there never block Ana,
    so Ana's own calendar gets double-booked. Expected: the callback refuses an account that another rep
    has connected (a message on Bob's page), and nothing is stored."""
    ana = make_rep("Ana")
    google_connection(ana)
    user = get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-123")
    bob = make_rep("Bob", user=user)
    client.force_login(user)
    fake_google.signed_in_as = ana.email  # Google signs Bob in as Ana
    start = client.post("/calendars/connect/google")
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    done = client.get(path_and_query(consent.headers["Location"]))
    assert done.status_code in (302, 400)
    assert not CalendarConnection.objects.filter(rep=bob).exists(), (
        "Bob now holds a connection to Ana's Google account"
    )
