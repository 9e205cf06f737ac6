"""What a review of the fixes of 2026-12-07 (67910ea..5ff0ea7) found they missed: a percent-encoded OAuth
code in the error report, a username in another Unicode form escaping the sign-in limit, a sub-path named
twice in the OAuth redirect URI (found by a reviewing helper; each test failed before its fix)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import DatabaseError
from django.test import Client
from django.test.utils import override_script_prefix

User = get_user_model()


@pytest.fixture
def rep_client(rep_client, settings):
    """The foundation conftest's signed-in rep, with Google configured."""
    settings.GOOGLE_CLIENT_ID = "baton-test.apps.googleusercontent.com"
    settings.GOOGLE_CLIENT_SECRET = "google-client-secret-for-tests"
    return rep_client


# --- 1. the OAuth code is redacted only in its decoded form -------------------------------------------------


def test_an_oauth_code_written_percent_encoded_is_not_in_the_error_report(
    rep_client, mailoutbox, monkeypatch
):
    """docs/calendars.md (and the README): "The 500 reports mailed to ``ADMINS`` replace … an OAuth
    callback's ``code``" (8110844). ``RedactingExceptionReporter._secrets`` replaces ``request.GET["code"]``,
    the *decoded* value. But the report quotes the request as it came: "Request URL: …&code=…" and
    ``QUERY_STRING`` hold the code percent-encoded (RFC 6749 §4.1.2 adds it to the redirect URI
    form-urlencoded), and a Google authorization code starts ``4/``, which the redirect writes ``4%2F…``: the
    decoded value appears nowhere, so nothing is replaced and the whole code goes to every ADMINS mailbox.
    (A code is single-use, but one that failed before it was redeemed — a database gone away while the
    connection is stored, as here, or a timeout at the token endpoint — is redeemable by whoever reads the
    mail within its lifetime.) Fix: also replace the code as it appears in the
    raw query string (``urllib.parse.quote(code, safe="")`` and ``quote_plus``), or better, redact the
    ``code`` parameter's value in ``QUERY_STRING`` and the URL whatever its encoding."""
    from calendars import views

    session = rep_client.session
    session[views.GOOGLE_SESSION] = {"state": "st4te-abcdef", "verifier": "v" * 43}
    session.save()
    tokens = {"token": "t", "refresh_token": "r"}
    monkeypatch.setattr(views.google_auth, "exchange_code", lambda *a, **k: tokens)
    google = views.google_provider.GoogleProvider
    monkeypatch.setattr(google, "account_email", lambda self: "dana@work.example")

    def database_down(**kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(views.services, "connection_create", database_down)
    secret = "0AeanS0ZsecretCodeXYZ123456"  # a Google code is "4/0A…"
    answer = rep_client.get(f"/calendars/oauth/google/callback?state=st4te-abcdef&code=4%2F{secret}")
    assert answer.status_code == 500
    reports = [m for m in mailoutbox if "server closed the connection" in m.body]
    assert reports, "no error report was mailed to ADMINS"
    texts = [t for m in reports for t in (m.subject, m.body, *(alt[0] for alt in m.alternatives))]
    leaked = [t[max(0, t.find(secret) - 60) : t.find(secret) + 30] for t in texts if secret in t]
    assert not leaked, f"the OAuth code is in the e-mail to ADMINS: {leaked}"


# --- 2. the per-username sign-in limit is keyed on the raw text, the sign-in on its NFKC form ---------------


@pytest.mark.django_db
def test_the_username_sign_in_limit_cannot_be_escaped_by_writing_the_username_in_another_unicode_form(
    settings,
):
    """README / config/login.py: ``LOGIN_RATE_LIMIT`` counts failed sign-ins "per client address and per
    username … past the limit a POST is answered 429 … its password unchecked" — the per-username count is
    what stops a guesser spread over many addresses. ``_keys`` hashes the username as posted (stripped,
    case-folded), but Django's sign-in form reads it NFKC-normalised (``UsernameField.to_python``): "ｄａｎａ"
    (full-width letters), "𝐝𝐚𝐧𝐚" and many more spellings sign in as ``dana``, each with a count of its own.
    Once ``dana`` is locked, the next guess in another spelling is answered — here the right password signs
    the attacker in as dana (302) although the username is past its limit. Fix: key the username as the form
    reads it: ``unicodedata.normalize("NFKC", value).strip().casefold()``."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # a fast test only
    settings.LOGIN_RATE_LIMIT = "3/15min"
    cache.clear()
    User.objects.create_user("dana", "dana@example.com", "the-right-one-123")
    for i in range(4):  # from four addresses: the per-address count never trips, the username's does
        guess = Client(REMOTE_ADDR=f"198.51.100.{i + 1}")
        guess.post("/accounts/login/", {"username": "dana", "password": f"guess-{i}"})
    locked = Client(REMOTE_ADDR="198.51.100.9").post(
        "/accounts/login/", {"username": "dana", "password": "the-right-one-123"}
    )
    assert locked.status_code == 429  # the limit as documented
    full_width = "\uff44\uff41\uff4e\uff41"  # "ｄａｎａ": NFKC "dana"
    other = Client(REMOTE_ADDR="198.51.100.10")
    answer = other.post("/accounts/login/", {"username": full_width, "password": "the-right-one-123"})
    assert answer.status_code == 429, (
        f"dana is past the limit, but spelt {full_width!r} the password was checked: {answer.status_code}"
    )


# --- 3. a sub-path deployment (documented this session) gets a doubled OAuth redirect URI -------------------


def test_the_google_redirect_uri_under_a_sub_path_names_the_sub_path_once(rep_client, settings):
    """docs/booking-page.md (9ffc1aa): "Under a sub-path (a proxy passing ``SCRIPT_NAME``, e.g. ``/baton``) …
    ``BASE_URL`` includes the sub-path (``https://example.com/baton``)", and docs/calendars.md has the admin
    register the redirect URI ``{BASE_URL}/calendars/oauth/google/callback``.
    ``calendars.views._callback_uri`` is ``settings.BASE_URL + reverse(…)``; under ``SCRIPT_NAME``
    ``reverse()`` carries the prefix too, so the URI sent to Google is
    ``https://example.com/baton/baton/calendars/oauth/google/callback``: Google answers
    ``redirect_uri_mismatch`` and no rep of such a deployment can connect a calendar (Microsoft alike). The
    fix made for the pages' URLs (``embed.script_url``: ``static()``'s path on ``BASE_URL``'s origin) was not
    made here. Fix: BASE_URL + the path without the script prefix
    (``reverse(…)[len(get_script_prefix()) - 1:]``), the same inside and outside a request."""
    settings.BASE_URL = "https://example.com/baton"
    with override_script_prefix("/baton/"):
        start = rep_client.post("/calendars/connect/google", SCRIPT_NAME="/baton")
    assert start.status_code == 302, start.status_code
    redirect_uri = parse_qs(urlsplit(start["Location"]).query)["redirect_uri"]
    assert redirect_uri == ["https://example.com/baton/calendars/oauth/google/callback"], redirect_uri
