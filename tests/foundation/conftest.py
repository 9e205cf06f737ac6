"""Fixtures for the foundation tests: a frozen clock, the demo configuration, one real booking, a Google
push channel to stop and a rep signed in on a server that mails its 500s."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

# Monday 2 March 2026, 07:00 UTC.
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def quiet_settings(settings):
    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def run(command: str, *args, **options) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out, stderr=out, **options)
    return out.getvalue()


def simulate_synthetic(*, rate: str, hours: str) -> str:
    """``simulate_routing`` of the demo's fast-lane pool with a synthetic stream (``--rate``, ``--hours``)."""
    args = ("fast-lane", "--start", "2026-03-02", "--rate", rate, "--hours", hours, "--no-progress")
    return run("simulate_routing", *args)


@pytest.fixture
def demo(db, clock) -> str:
    return run("demo")


def book_demo(api: APIClient) -> dict:
    """Book the ``demo`` meeting type (first_available pool) through the public API: the 201 body."""
    slots = api.get("/api/v1/meeting-types/demo/slots", {"start": "2026-03-03", "timezone": "UTC"}).json()
    # the slot nearest 10:00 UTC, when reps in Europe and India are all at work
    start = min(
        (s["start"] for s in slots["slots"]), key=lambda s: abs(int(s[11:13]) * 60 + int(s[14:16]) - 600)
    )
    body = {"start": start, "name": "Pat Prospect", "email": "pat@example.org", "timezone": "Europe/Berlin"}
    response = api.post("/api/v1/meeting-types/demo/bookings", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def booking(demo):
    """A booking of the ``demo`` meeting type (first_available pool) made through the public API."""
    from booking.models import Booking

    return Booking.objects.get(pk=book_demo(APIClient())["id"])


@pytest.fixture
def stopped_channels(monkeypatch) -> list[str]:
    """Google's end of the push channels: the ids of the channels stopped (``unsubscribe``), in order."""
    from calendars.services import connections, watches

    stopped: list[str] = []

    class Provider:
        def unsubscribe(self, watch):
            stopped.append(watch.channel_id)

    monkeypatch.setattr(watches, "provider_for", lambda connection: Provider())
    monkeypatch.setattr(connections, "provider_for", lambda connection: Provider())
    return stopped


def watched_google_connection(rep):
    """A Google connection of ``rep`` whose calendar pushes its changes to Baton (channel ``channel-1``)."""
    from django.utils import timezone

    from calendars.models import Calendar, CalendarConnection

    connection = CalendarConnection.objects.create(
        rep=rep, provider=CalendarConnection.Provider.GOOGLE, account_email=rep.email, secret_blob="x"
    )
    Calendar.objects.create(
        connection=connection,
        external_id=rep.email,
        blocks_availability=True,
        watch_channel_id="channel-1",
        watch_resource_id="resource-1",
        watch_expiration=timezone.now() + dt.timedelta(days=6),
    )
    return connection


@pytest.fixture
def rep_client(db, settings):
    """A rep signed in to their calendar page (not staff), on a server mailing its 500s to ADMINS (tokens
    encrypted, no push channels)."""
    from cryptography.fernet import Fernet
    from django.contrib.auth import get_user_model
    from django.test import Client

    from routing.models import Rep

    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.CALENDAR_PUSH_ENABLED = False
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = Rep.objects.create(name="Dana", email="dana@example.com", timezone="Europe/Berlin", user=user)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    client.rep = rep
    return client
