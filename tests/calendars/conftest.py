"""Fixtures for the calendar tests: fake Google / Microsoft / ICS servers on loopback, wired into settings,
and helpers to create reps and connections."""

from __future__ import annotations

import datetime as dt
import secrets
import types

import pytest
from cryptography.fernet import Fernet

from tests.fakes.google import FakeGoogle
from tests.fakes.http import make_self_signed_cert
from tests.fakes.ics import FakeIcsHost
from tests.fakes.microsoft import FakeMicrosoft


@pytest.fixture(autouse=True)
def calendar_settings(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.GOOGLE_CLIENT_ID = "baton-test.apps.googleusercontent.com"
    settings.GOOGLE_CLIENT_SECRET = "google-client-secret-for-tests"
    settings.MS_CLIENT_ID = "baton-test-client"
    settings.MS_CLIENT_SECRET = "ms-client-secret-for-tests"
    settings.MS_VALIDATE_AUTHORITY = False
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = True
    settings.CALENDAR_PUSH_ENABLED = False
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 5
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.CALENDAR_ALERT_EMAILS = []
    return settings


@pytest.fixture
def fake_google(settings, monkeypatch):
    server = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = server.api_endpoint
    settings.GOOGLE_TOKEN_URI = f"{server.base_url}/token"
    settings.GOOGLE_REVOKE_URI = f"{server.base_url}/revoke"
    settings.GOOGLE_AUTH_URI = f"{server.base_url}/o/oauth2/auth"
    monkeypatch.setenv(
        "OAUTHLIB_INSECURE_TRANSPORT", "1"
    )  # the fake token endpoint is plain http on loopback
    # googleapiclient backs off between retries with real sleeps; keep the tests quick (only its own sleeps)
    monkeypatch.setattr("googleapiclient.http.time", types.SimpleNamespace(sleep=lambda seconds: None))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fake_ms(settings, monkeypatch, tls_cert):
    server = FakeMicrosoft(tls=tls_cert).start()
    settings.MS_AUTHORITY = server.authority
    settings.MS_GRAPH_ENDPOINT = server.graph
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_cert[0])  # trust the fake's self-signed certificate
    yield server
    server.stop()


@pytest.fixture
def fake_ics():
    server = FakeIcsHost().start()
    yield server
    server.stop()


@pytest.fixture
def make_rep(db):
    from routing.models import Rep

    counter = {"n": 0}

    def make(name: str | None = None, *, timezone: str = "America/New_York", user=None) -> Rep:
        counter["n"] += 1
        name = name or f"Rep {counter['n']}"
        return Rep.objects.create(
            name=name, email=f"rep{counter['n']}@example.com", timezone=timezone, user=user
        )

    return make


@pytest.fixture
def google_connection(fake_google):
    """Connect a rep's (fake) Google account directly, as the OAuth callback would, and list calendars."""
    from calendars.models import CalendarConnection
    from calendars.services.connections import calendars_refresh, connection_create

    def connect(rep, email: str | None = None, **account_kwargs):
        email = email or rep.email
        if email not in fake_google.accounts:  # in the rep's zone, as a rep's own calendar is
            fake_google.add_account(email, **{"time_zone": rep.timezone, **account_kwargs})
        tokens = fake_google.issue_tokens(email)
        expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=tokens["expires_in"])).isoformat()
        secrets = {
            "token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "expiry": expiry,
        }
        conn = connection_create(
            rep=rep, provider=CalendarConnection.Provider.GOOGLE, secrets=secrets, account_email=email
        )
        calendars_refresh(connection_id=conn.pk)
        conn.refresh_from_db()
        return conn

    return connect


@pytest.fixture
def ms_connection(fake_ms):
    """Connect a rep's (fake) Microsoft account through MSAL's real auth-code flow."""
    import requests

    from calendars.models import CalendarConnection
    from calendars.providers import microsoft_auth as microsoft
    from calendars.services.connections import calendars_refresh, connection_create
    from tests.fakes.google import parse_redirect

    def connect(rep, email: str | None = None, **user_kwargs):
        email = email or rep.email
        if email not in fake_ms.users:
            fake_ms.add_user(email, **user_kwargs)
        fake_ms.signed_in_as = email
        flow = microsoft.start_flow("http://127.0.0.1:8000/calendars/oauth/microsoft/callback")
        answer = requests.get(flow["auth_uri"], allow_redirects=False, timeout=5)
        secrets, account = microsoft.finish_flow(flow, parse_redirect(answer.headers["Location"]))
        conn = connection_create(
            rep=rep, provider=CalendarConnection.Provider.MICROSOFT, secrets=secrets, account_email=account
        )
        calendars_refresh(connection_id=conn.pk)
        conn.refresh_from_db()
        return conn

    return connect


@pytest.fixture
def ics_connection(fake_ics):
    from calendars.services.connections import ics_connect

    def connect(rep, data: bytes):
        return ics_connect(rep=rep, url=fake_ics.publish(data))

    return connect


@pytest.fixture
def make_booking(db):
    """``make(*reps, start=None, **fields)``: a confirmed booking 3 days ahead hosted by ``reps`` (AE, then
    SEs), built directly (no routing), for the calendar write-back tests."""
    from booking.models import Booking, BookingHost, MeetingType
    from routing.models import Pool

    pool = Pool.objects.create(name="Inbound", slug="inbound", strategy="round_robin")
    meeting = MeetingType.objects.create(slug="intro", title="Intro call", duration_minutes=30, pool=pool)

    def make(*reps, start=None, **fields) -> Booking:
        start = start or dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(
            days=3
        )
        booking = Booking.objects.create(
            meeting_type=meeting,
            pool=pool,
            start=start,
            end=start + dt.timedelta(minutes=30),
            prospect_name="Pat Prospect",
            prospect_email="pat@prospect.example",
            prospect_timezone="Europe/Paris",
            manage_token_hash=secrets.token_hex(32),
            answers={"size": "11-50"},
            **fields,
        )
        for i, rep in enumerate(reps):
            BookingHost.objects.create(
                booking=booking,
                rep=rep,
                role="ae" if i == 0 else "se",
                blocked_start=booking.start,
                blocked_end=booking.end,
            )
        return booking

    make.meeting = meeting
    return make


@pytest.fixture
def queued(monkeypatch):
    """Record queued syncs instead of running them (a webhook or a page must only queue)."""
    from calendars.services import sync as sync_service

    calls = []
    monkeypatch.setattr(sync_service, "_enqueue", calls.append)
    return calls


@pytest.fixture
def push(settings, live_server):
    """Push channels on, with the live server as the webhooks' address."""
    settings.CALENDAR_PUSH_ENABLED = True
    settings.CALENDAR_WEBHOOK_BASE_URL = live_server.url
    return live_server


@pytest.fixture
def rep_client(client, make_rep):
    """Rep Dana signed in (the calendars pages)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = make_rep("Dana", user=user)
    client.force_login(user)
    client.rep = rep
    return client
