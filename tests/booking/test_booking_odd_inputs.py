"""Hostile and odd input on endpoints the schema fuzz (``test_booking_api_fuzz.py``) does not reach,
or reaches only with UTF-8 text: "No input yields a 500", bad input is a 400 with field-level messages,
and every error of the API is JSON (docs/booking-api.md, "Errors")."""

from __future__ import annotations

import json

import pytest
import time_machine

from calendars.models import Calendar, CalendarConnection
from calendars.services.watches import _digest
from leads.models import Lead
from tests.booking.booking_factories import START

pytestmark = pytest.mark.django_db

MS_WEBHOOK = "/calendars/webhooks/microsoft"

# A valid address (Django's and DRF's e-mail check take it, 247 characters) whose domain, as the lead stores
# it (``leads.rules_core.normalize_domain``: NFKC, then IDNA), is 707 characters: the ligature "ﬃ" (U+FB03)
# is "ffi" in NFKC. Lead.domain is a varchar(253).
LIGATURE_EMAIL = "a@" + ".".join(["\ufb03" * 21] * 11) + ".com"


@pytest.fixture
def ms_calendar(rep):
    connection = CalendarConnection.objects.create(rep=rep, provider="microsoft", secret_blob="x")
    return Calendar.objects.create(
        connection=connection,
        external_id="cal-1",
        watch_channel_id="sub-1",
        watch_secret_hash=_digest("state-1"),
    )


@pytest.mark.parametrize(
    "item",
    [
        {"subscriptionId": "\ud83d", "clientState": "state-1"},  # the lookup of the batch's subscriptions
        {"subscriptionId": "sub-1", "clientState": "\ud83d"},  # the clientState's hash
    ],
    ids=["subscriptionId", "clientState"],
)
def test_a_graph_notification_with_a_lone_surrogate_is_not_a_server_error(client, ms_calendar, item):
    """The Graph webhook is public. ``\\ud83d`` is valid JSON (half an emoji); ``watches._plain`` lets it
    through (it only refuses NUL), the query (SQLite and PostgreSQL alike) or ``_digest``'s ``encode()``
    raises UnicodeEncodeError, and the answer is a 500 mailed to ADMINS."""
    client.raise_request_exception = False
    payload = json.dumps({"value": [{**item, "changeType": "updated"}]})  # ensure_ascii: \ud83d as escape
    answer = client.post(MS_WEBHOOK, payload, content_type="application/json")
    assert answer.status_code < 500, answer.content[:200]


@pytest.mark.postgres
@pytest.mark.parametrize("endpoint", ["route", "instant"])
def test_a_valid_email_whose_normalised_domain_is_too_long_is_not_a_server_error(
    client, meeting_type, settings, endpoint
):
    """The route APIs store the lead with its domain normalised (NFKC + IDNA): longer than the address
    itself, and over Lead.domain's 253 characters for an address the e-mail check accepts. PostgreSQL
    refuses the INSERT (value too long for type character varying(253)): a 500. Either a 400 on ``email``
    or the lead stored is fine."""
    settings.INSTANT_ROUTE_API_KEYS = ["key"]
    client.raise_request_exception = False
    data = {"email": LIGATURE_EMAIL, "name": "Pat", "timezone": "Europe/Berlin", "answers": {"size": "1-10"}}
    with time_machine.travel(START, tick=False):  # Ana is at work: the instant route stores its lead
        if endpoint == "route":
            answer = client.post(
                f"/api/v1/meeting-types/{meeting_type.slug}/route", data, content_type="application/json"
            )
        else:
            answer = client.post(
                "/api/v1/route",
                {**data, "meeting_type": meeting_type.slug},
                content_type="application/json",
                HTTP_AUTHORIZATION="Bearer key",
            )
    assert answer.status_code in (200, 400), answer.content[:200]
    if answer.status_code == 400:
        assert "email" in answer.json()["errors"]
    else:
        assert Lead.objects.filter(email=LIGATURE_EMAIL).exists()


def test_a_booking_whose_normalised_email_domain_is_too_long_is_a_field_error(api, meeting_type, clock):
    """The booking API takes the same address as the route APIs: its domain, normalised, becomes an
    ``Account.domain`` (253) when the owners are learned from the meetings held, so it is refused here too."""
    answer = api.post(
        f"/api/v1/meeting-types/{meeting_type.slug}/bookings",
        {
            "start": "2026-03-03T10:00:00+01:00",
            "name": "Pat",
            "email": LIGATURE_EMAIL,
            "timezone": "Europe/Berlin",
            "answers": {"size": "1-10"},
        },
        format="json",
    )
    assert answer.status_code == 400, answer.json()
    assert list(answer.json()["errors"]) == ["email"]


@pytest.mark.parametrize("param", ["timezone", "start", "end"])
@pytest.mark.parametrize("path", ["/api/v1/meeting-types/{slug}/slots", "/api/v1/bookings/{token}/slots"])
def test_an_empty_timezone_query_is_a_field_error(api, meeting_type, clock, path, param):
    """``timezone`` is "an IANA name" (docs), the schema says ``minLength: 1`` and ``TimezoneField`` says
    "blank is refused anyway"; but DRF reads ``?timezone=`` in a query string as absent, so the answer is a
    200 in UTC (or the prospect's zone): a client whose zone variable was empty shows UTC times as local."""
    booked = api.post(
        f"/api/v1/meeting-types/{meeting_type.slug}/bookings",
        {
            "start": "2026-03-03T10:00:00+01:00",
            "name": "Pat",
            "email": "pat@example.org",
            "timezone": "America/New_York",
            "answers": {"size": "1-10"},
        },
        format="json",
    )
    assert booked.status_code == 201
    url = path.format(slug=meeting_type.slug, token=booked.json()["manage_token"])
    answer = api.get(url + f"?{param}=")  # start= and end= too: not today, not a week
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"] == {param: ["This field may not be blank."]}


def test_an_empty_timezone_query_of_a_booking_is_a_field_error(api, meeting_type, clock):
    """``GET /api/v1/bookings/{token}?timezone=`` too: not the prospect's zone."""
    booked = api.post(
        f"/api/v1/meeting-types/{meeting_type.slug}/bookings",
        {
            "start": "2026-03-03T10:00:00+01:00",
            "name": "Pat",
            "email": "pat@example.org",
            "timezone": "America/New_York",
            "answers": {"size": "1-10"},
        },
        format="json",
    )
    assert booked.status_code == 201
    answer = api.get(f"/api/v1/bookings/{booked.json()['manage_token']}?timezone=")
    assert answer.status_code == 400, answer.json()
    assert "timezone" in answer.json()["errors"]


def test_an_api_request_refused_before_its_view_is_answered_in_json(client, meeting_type, settings):
    """ "Every error is JSON: {"code": ..., "detail": ...}". A request refused by Django before the view (a
    Host not in ALLOWED_HOSTS, SuspiciousOperation) gets Django's HTML "Bad Request (400)" page on API
    paths: ``config/urls.py`` routes only ``handler500`` to the JSON answer, not ``handler400``."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["book.example.com"]
    client.raise_request_exception = False
    answer = client.get(f"/api/v1/meeting-types/{meeting_type.slug}", HTTP_HOST="other.example")
    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("application/json"), answer.content[:100]
    assert {"code", "detail"} <= set(answer.json())


def test_an_unknown_api_path_outside_v1_is_answered_in_json(client, settings):
    """A 404 under /api/ that no URL matches (not /api/v1/, whose catch-all answers JSON itself) is JSON
    too; a page's 404 stays Django's page."""
    settings.DEBUG = False
    answer = client.get("/api/v2/meeting-types")
    assert answer.status_code == 404
    assert answer.json() == {"code": "not_found", "detail": "Not found."}
    page = client.get("/no-such-page/at-all")
    assert page.status_code == 404
    assert not page["Content-Type"].startswith("application/json")


def test_a_refused_page_request_keeps_the_html_page(client, settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["book.example.com"]
    client.raise_request_exception = False
    answer = client.get("/", HTTP_HOST="other.example")
    assert answer.status_code == 400
    assert answer["Content-Type"].startswith("text/html")


def test_a_permission_denied_outside_a_view_is_json_on_api_paths(rf):
    """``handler403`` (a middleware's PermissionDenied): JSON with DRF's code on API paths, else a page."""
    from django.core.exceptions import PermissionDenied

    from booking.api.errors import permission_denied_page

    answer = permission_denied_page(rf.get("/api/v1/meeting-types"), PermissionDenied())
    assert answer.status_code == 403
    assert json.loads(answer.content)["code"] == "forbidden"
    page = permission_denied_page(rf.get("/book/intro"), PermissionDenied())
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")
