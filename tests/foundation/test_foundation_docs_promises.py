"""The documentation's promises (README.md, docs/booking-api.md, docs/embed.md) checked against what the code
does (found by a hunting helper). Each test below failed on the code as it was: the docstring says what the
docs promise, what the code did instead, and which of the two was wrong (fixed on that side)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.test import Client
from rest_framework.test import APIClient

from config.env import env_origins
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

ROOT = Path(__file__).resolve().parents[2]
# the production variables a fresh interpreter must not inherit from the test run
UNSET = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "TRUST_X_FORWARDED_PROTO", "CELERY_BROKER_URL"}


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py <args>`` in a fresh interpreter with exactly these Baton variables set (DEBUG=1, an
    in-memory SQLite database, so no file is touched)."""
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    clean.update({"DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def intro(db, clock):
    """A bookable ``intro`` meeting type (one rep, Berlin hours, 30-minute grid; clock: Monday 07:00 UTC)."""
    return make_meeting_type(
        make_pool("round_robin", [make_rep("Ana")]),
        slug="intro",
        questions=[{"key": "size", "label": "Size", "type": "select", "options": ["1-10", "11-50"]}],
    )


# --- 1. EMBED_ALLOWED_ORIGINS / API_CORS_ORIGINS: a host in Unicode is taken at start-up and never works


def test_an_embed_origin_with_a_unicode_host_is_refused_or_framed_as_ascii(intro, settings):
    """docs/embed.md: `EMBED_ALLOWED_ORIGINS` takes origins `scheme://host[:port]`; anything that is not an
    origin "fails at start-up", and a listed origin gets `Content-Security-Policy: frame-ancestors 'self'
    <origins>` on `/book/…?embed=1` (no `X-Frame-Options`).

    ``config.env.env_origins`` accepts an internationalised host as typed (`https://例え.jp`: its check is
    ``str.isalnum``, true for any script) and keeps it in Unicode. A CSP header is ASCII (its host-source
    grammar is letters, digits and `-`; browsers compare the punycode form, `xn--r8jz45g.jp`), so Django
    MIME-encodes the whole header: the embed page is sent `Content-Security-Policy:
    =?utf-8?b?ZnJhbWUtYW5jZXN0b3Jz…?=`, which no browser reads as a policy, and without X-Frame-Options
    (removed for embed mode). The booking page is then framable by *any* site (clickjacking of the booking
    form), and the operator's own site is not specially allowed either. The code is wrong: the host must be
    IDNA-encoded (`https://xn--r8jz45g.jp`) or refused at start-up, as the docs promise for a non-origin."""
    try:
        origins = env_origins("EMBED_ALLOWED_ORIGINS", environ={"EMBED_ALLOWED_ORIGINS": "https://例え.jp"})
    except ImproperlyConfigured:
        return  # refused at start-up: fine
    settings.EMBED_ALLOWED_ORIGINS = origins
    response = Client().get("/book/intro", {"embed": "1"})
    assert response.status_code == 200
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp.isascii() and csp.startswith("frame-ancestors 'self' "), f"embed page CSP: {csp!r}"
    assert csp == "frame-ancestors 'self' https://xn--r8jz45g.jp", csp


def test_an_api_cors_origin_with_a_unicode_host_answers_the_browsers_origin(intro, settings):
    """docs/booking-api.md, "Browsers and other origins": `Access-Control-Allow-Origin` is sent "for the
    origins in `API_CORS_ORIGINS` (… a comma-separated list narrows it)"; README "Production" lists it among
    the settings rejected loudly when bad.

    `API_CORS_ORIGINS=https://bücher.de` is accepted at start-up and kept in Unicode, but a browser sends
    `Origin: https://xn--bcher-kva.de` (an Origin header is ASCII), which matches no listed origin: the
    customer's site never gets `Access-Control-Allow-Origin`, every fetch of its booking form fails with a
    CORS error, and nothing said why. The code is wrong (config/env.py ``env_origins``): IDNA-encode the
    host, or refuse it at start-up."""
    try:
        origins = env_origins("API_CORS_ORIGINS", environ={"API_CORS_ORIGINS": "https://bücher.de"})
    except ImproperlyConfigured:
        return  # refused at start-up: fine
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = origins
    settings.CORS_ALLOWED_ORIGIN_REGEXES = []
    browser_origin = "https://xn--bcher-kva.de"
    response = APIClient().get("/api/v1/meeting-types/intro", HTTP_ORIGIN=browser_origin)
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == browser_origin, (
        f"API_CORS_ORIGINS kept as {origins}; the browser's origin {browser_origin} is not allowed"
    )


# --- 2. settings the README says are rejected loudly, taken as they come


def test_a_misspelt_owner_backend_fails_at_start_up_naming_the_variable():
    """README "Production": every setting is read by config/env.py, "whose helpers reject bad values loudly
    (`ImproperlyConfigured` naming the variable)"; the settings table lists `BATON_OWNER_BACKEND` (a dotted
    path, docs/routing-rules.md).

    A misspelt path (`leads.owners.AccountOwnerBackends`) is read with ``env_str`` unchecked: settings load,
    `manage.py check` says "no issues", and the first prospect whose meeting type has an account-owner rule
    gets a **500** from `POST /api/v1/meeting-types/<slug>/route` (``leads.owners.owner_backend`` raises
    ImportError), so nobody can book that meeting type. The code is wrong: the path must be imported (or at
    least checked) at start-up or by a system check, naming the variable."""
    result = run_manage("check", BATON_OWNER_BACKEND="leads.owners.AccountOwnerBackends")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "BATON_OWNER_BACKEND" in output, (
        f"manage.py check with a misspelt BATON_OWNER_BACKEND: exit {result.returncode}, {output.strip()!r}"
    )


def test_check_deploy_flags_a_misspelt_email_backend():
    """README "Production": "`manage.py check --deploy` warns where a deployment would quietly fail its
    users: … booking e-mails not sent (`W003`: the console backend)", and every setting's bad value is
    rejected loudly.

    `EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackends` (one letter off) loads, and
    `check --deploy` is silent about it (W003 looks only for the known non-delivering backends' names). Every
    confirmation, cancellation and invitation then fails to import its backend in the outbox, is retried for
    about 5 h and dies: no prospect or host gets an e-mail, the quiet failure W003 exists to prevent. The code
    is wrong: an EMAIL_BACKEND that cannot be imported must be an error (start-up or check), naming it."""
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "k3y-Z9" * 9,
        "ALLOWED_HOSTS": "baton.example.com",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CALENDAR_ALERT_EMAILS": "ops@example.com",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackends",
    }
    result = run_manage("check", "--deploy", **env)
    output = result.stdout + result.stderr
    assert "EMAIL_BACKEND" in output, f"check --deploy said nothing about it: {output.strip()[-800:]!r}"


def test_a_booking_rate_limit_of_zero_is_refused_or_means_off(intro, settings):
    """README and docs/booking-api.md: `BOOKING_RATE_LIMIT` (default `30/min`) limits the public POSTs per
    client; "an empty value turns a limit off"; bad values fail at start-up (`BOOKING_RATE_LIMIT: expected
    e.g. 30/min`). `LOGIN_RATE_LIMIT` refuses `0/…` at start-up.

    `BOOKING_RATE_LIMIT=0/min` (an operator's way of saying "no limit") passes the start-up check
    (``\\d+/…``) and then answers every booking, cancellation, reschedule and route with **429** forever: the
    booking page cannot book anything. The code is wrong: refuse a zero rate at start-up as LOGIN_RATE_LIMIT
    does (or treat it as off)."""
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    clean.update(DEBUG="1", BOOKING_RATE_LIMIT="0/min", DJANGO_SETTINGS_MODULE="config.settings")
    clean["DATABASE_URL"] = "sqlite:///:memory:"
    code = "import django; django.setup()"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    if loaded.returncode != 0 and "BOOKING_RATE_LIMIT" in loaded.stderr:
        return  # refused at start-up, naming the variable: fine
    settings.BOOKING_RATE_LIMIT = "0/min"
    response = APIClient().post("/api/v1/meeting-types/intro/bookings", body(), format="json")
    assert response.status_code == 201, (response.status_code, response.json())


# --- 3. the OpenAPI schema against the API's answers


def _component(name: str) -> dict:
    schema = APIClient().get("/api/schema/?format=json").json()
    return schema["components"]["schemas"][name]


def test_the_schema_accepts_the_empty_visitor_the_api_accepts(intro):
    """README: the JSON API's schema is "generated from the serializers, so the schema cannot drift from the
    code"; docs/booking-api.md points integrators at `/api/schema/` for the shapes.

    `BookingCreate.visitor` is an optional, blankable field: the API books `"visitor": ""` (201). Its schema
    is `oneOf: [{type: string, maxLength: 64, pattern: ^[A-Za-z0-9_-]*$}, {type: string, maxLength: 0}]`,
    and an empty string matches *both* branches, so by JSON Schema's `oneOf` (exactly one) the schema calls
    `""` invalid: a client that validates its requests against /api/schema/ refuses a body the API takes. The
    schema is wrong (drf-spectacular's rendering of the blankable RegexField): `""` must be valid by it."""
    visitor = _component("BookingCreate")["properties"]["visitor"]
    response = APIClient().post("/api/v1/meeting-types/intro/bookings", body(visitor=""), format="json")
    assert response.status_code == 201, response.json()
    errors = [e.message for e in jsonschema.Draft4Validator(visitor).iter_errors("")]
    assert not errors, f"the schema refuses the visitor the API took: {errors}"


def test_the_schema_states_the_idempotency_key_bounds_the_api_enforces(intro):
    """docs/booking-api.md, "Idempotency": `Idempotency-Key: <1–255 printable characters>`; the API answers a
    256-character key with `400 invalid` (`errors["Idempotency-Key"]`).

    The schema's header parameter is a bare `{"type": "string"}` (no `minLength`/`maxLength`), so a client
    generated from /api/schema/ accepts and sends a key the API refuses, and its author learns the bound only
    from a 400 in production. The schema is wrong: the parameter should say `minLength: 1, maxLength: 255`."""
    refused = APIClient().post(
        "/api/v1/meeting-types/intro/bookings", body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )
    assert refused.status_code == 400 and "Idempotency-Key" in refused.json()["errors"]
    schema = APIClient().get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/meeting-types/{slug}/bookings"]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["schema"].get("maxLength") == 255 and header["schema"].get("minLength") == 1, header


# --- 4. "Every error is JSON"


def test_a_server_error_of_the_api_is_json_too(intro, monkeypatch):
    """docs/booking-api.md, "Errors": "Every error is JSON: `{"code": "...", "detail": "...", ...}`. `code` is
    stable and meant for programs". No input yields a 500, but the database can (a failover, a full disk, a
    restart): then the booking page's and every integrator's JSON parsing gets Django's HTML page
    (`<!doctype html>… Server Error (500)`, `Content-Type: text/html`) instead of a code to act on. The code
    is wrong: the API's 500 should be `{"code": "server_error", "detail": …}` as JSON like its other errors
    (DRF hands unknown exceptions back to Django's HTML handler500)."""
    from booking import selectors

    def database_down(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(selectors, "meeting_types_active", database_down)
    response = APIClient(raise_request_exception=False).get("/api/v1/meeting-types")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/json"), (
        response.headers["Content-Type"],
        response.content[:120],
    )
    assert isinstance(json.loads(response.content).get("code"), str)


def test_a_server_error_outside_drf_on_an_api_path_is_json_too(intro, monkeypatch):
    """The same promise when the error is raised around the API's view, in a middleware (a session store
    gone away, a header policy): Django's handler500 answered its HTML page to the API's JSON clients. Pages
    outside /api/ keep the HTML page."""
    from booking import middleware

    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(middleware, "set_frame_ancestors", broken)
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/meeting-types")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/json"), response.content[:120]
    assert json.loads(response.content)["code"] == "server_error"
    page = client.get("/book/intro")
    assert page.status_code == 500 and page.headers["Content-Type"].startswith("text/html")
