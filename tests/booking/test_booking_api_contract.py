"""The public API against what its OpenAPI schema (``/api/schema/``) and docs/booking-api.md /
docs/routing-rules.md promise: every rate-limited operation lists its 429, the route endpoints their 404 and
429, the instant route its bearer key, the docs the outcome's statuses, and the prospect-facing endpoints
answer CORS as the docs say. Each test failed before its fix (a generated client was surprised)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.booking.booking_factories import body

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs"
INSTANT_KEY = "contract-hunt-instant-key-0123456789"
AFTER = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)  # the booking of ``body()`` (09:00 UTC) is over


def _schema() -> dict:
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _documented_statuses(path: str, method: str) -> set[str]:
    return set(_schema()["paths"][path][method]["responses"])


@pytest.fixture
def token(api, meeting_type, clock):
    response = api.post("/api/v1/meeting-types/intro/bookings", body(), format="json")
    assert response.status_code == 201, response.json()
    return response.json()["manage_token"]


# --- 1. the read rate limit's 429 is in no GET operation of the schema

READS = [
    ("/api/v1/meeting-types", "/api/v1/meeting-types"),
    ("/api/v1/meeting-types/{slug}", "/api/v1/meeting-types/intro"),
    ("/api/v1/meeting-types/{slug}/slots", "/api/v1/meeting-types/intro/slots"),
    ("/api/v1/bookings/{token}", "/api/v1/bookings/{token}"),
    ("/api/v1/bookings/{token}/slots", "/api/v1/bookings/{token}/slots"),
]


@pytest.mark.parametrize(("schema_path", "url"), READS, ids=[p for p, _ in READS])
def test_read_rate_limit_429_is_in_the_schema_of_every_get(api, token, settings, schema_path, url):
    """docs/booking-api.md: the GETs are rate-limited (API_READ_RATE_LIMIT, 429 rate_limited). The API
    answers 429, but no GET operation of /api/schema/ lists 429, so a generated client has no typed error
    (nor Retry-After handling) for it."""
    settings.API_READ_RATE_LIMIT = "1/min"
    url = url.format(token=token)
    assert api.get(url).status_code == 200
    throttled = api.get(url)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "rate_limited"
    assert "429" in _documented_statuses(schema_path, "get")


# --- 2. the route endpoints answer statuses their schema does not list


def test_meeting_type_route_unknown_slug_404_is_in_the_schema(api, meeting_type):
    """POST /api/v1/meeting-types/{slug}/route answers an unknown slug with 404 not_found (like every
    meeting-type endpoint), but its operation lists only 200 and 400."""
    response = api.post(
        "/api/v1/meeting-types/no-such-type/route",
        {"email": "pat@example.org", "name": "Pat", "timezone": "UTC", "answers": {"size": "1-10"}},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "404" in _documented_statuses("/api/v1/meeting-types/{slug}/route", "post")


def test_meeting_type_route_rate_limit_429_is_in_the_schema(api, meeting_type, settings):
    """The meeting-type route is a public POST, throttled by BOOKING_RATE_LIMIT (429 rate_limited); its
    operation does not list 429 (bookings_create, cancel and reschedule do)."""
    settings.BOOKING_RATE_LIMIT = "1/min"
    lead = {"email": "pat@example.org", "name": "Pat", "timezone": "UTC", "answers": {"size": "1-10"}}
    assert api.post("/api/v1/meeting-types/intro/route", lead, format="json").status_code == 200
    throttled = api.post("/api/v1/meeting-types/intro/route", lead, format="json")
    assert throttled.status_code == 429
    assert "429" in _documented_statuses("/api/v1/meeting-types/{slug}/route", "post")


def test_instant_route_rate_limit_429_is_in_the_schema(meeting_type, settings, clock):
    """docs/routing-rules.md: POST /api/v1/route is "rate-limited like the other public POSTs
    (BOOKING_RATE_LIMIT, 429 rate_limited)". It is, but route_instant lists 200/400/401/403/404/409 only."""
    settings.INSTANT_ROUTE_API_KEYS = [INSTANT_KEY]
    settings.BOOKING_RATE_LIMIT = "1/min"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {INSTANT_KEY}")
    lead = {
        "meeting_type": "intro",
        "email": "pat@example.org",
        "timezone": "UTC",
        "answers": {"size": "1-10"},
        "dry_run": True,
    }
    assert client.post("/api/v1/route", lead, format="json").status_code in (200, 409)
    throttled = client.post("/api/v1/route", lead, format="json")
    assert throttled.status_code == 429
    assert "429" in _documented_statuses("/api/v1/route", "post")


# --- 3. the instant route's bearer key is not in the schema


def test_instant_route_bearer_key_is_declared_in_the_schema(meeting_type, settings):
    """POST /api/v1/route needs `Authorization: Bearer <key>` (401 without it), but the schema declares no
    security scheme for it (components.securitySchemes has only cookieAuth; the operation has no `security`)
    and no Authorization header parameter: Swagger UI's "Authorize" and generated clients cannot send the key,
    so every call from a client generated from /api/schema/ is a 401."""
    settings.INSTANT_ROUTE_API_KEYS = [INSTANT_KEY]
    unauthenticated = APIClient().post("/api/v1/route", {"meeting_type": "intro"}, format="json")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")

    schema = _schema()
    operation = schema["paths"]["/api/v1/route"]["post"]
    schemes = schema.get("components", {}).get("securitySchemes", {})
    bearer = {
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    }
    required = {name for requirement in operation.get("security") or [] for name in requirement}
    header = any(
        p.get("in") == "header" and p.get("name", "").lower() == "authorization"
        for p in operation.get("parameters", [])
    )
    assert (bearer & required) or header, (
        f"route_instant: security={operation.get('security')!r}, securitySchemes={sorted(schemes)}"
    )


# --- 4. the outcome endpoint's documented success status


def _documented_outcome_status() -> tuple[int, int]:
    row = re.search(
        r"^\| `POST /api/v1/bookings/id/\{id\}/outcome` \|.*\| "
        r"(\d{3}) \(first\), (\d{3}) \(a replacement\) \|$",
        (DOCS / "booking-api.md").read_text(),
        flags=re.MULTILINE,
    )
    assert row, "the endpoint table of docs/booking-api.md has no outcome row"
    return int(row.group(1)), int(row.group(2))


def test_first_outcome_answers_the_status_the_docs_table_gives(api, token, clock):
    """docs/booking-api.md's endpoint table gives the outcome endpoint's success as 200; the first recording
    answers 201 (only a replacement is 200), so a client checking for the documented 200 treats every first
    recording as a failure (and may record it again)."""
    booking_id = api.get(f"/api/v1/bookings/{token}").json()["id"]
    clock.move_to(AFTER)
    staff = APIClient()
    boss = get_user_model().objects.create_user("boss", password="x", is_staff=True, is_superuser=True)
    staff.force_login(boss)
    response = staff.post(f"/api/v1/bookings/id/{booking_id}/outcome", {"kind": "held"}, format="json")
    assert response.json()["kind"] == "held"
    first, replaced = _documented_outcome_status()
    assert response.status_code == first  # the table said 200
    again = staff.post(f"/api/v1/bookings/id/{booking_id}/outcome", {"kind": "no_show"}, format="json")
    assert again.status_code == replaced


# --- 5. "the widget can call it from any origin": no CORS headers

ORIGIN = "https://www.customer.example"


def test_cross_origin_get_is_readable_by_the_browser(api, meeting_type, clock):
    """docs/booking-api.md, "Browsers and other origins": the API takes no credentials "so the widget can
    call it from any origin". A browser lets a page of another origin read a response only with
    Access-Control-Allow-Origin; the API sends none (there is no CORS middleware), so a fetch from the
    customer's own site fails with a CORS error."""
    response = api.get("/api/v1/meeting-types/intro/slots", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", ORIGIN)


def test_cross_origin_json_post_preflight_is_allowed(api, meeting_type):
    """A JSON POST (Content-Type: application/json, the only type the API parses) from another origin is
    preflighted; the OPTIONS answer is DRF's metadata, 200 without Access-Control-Allow-Origin/-Methods/
    -Headers, so the browser never sends the booking."""
    response = api.options(
        "/api/v1/meeting-types/intro/bookings",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, idempotency-key",
    )
    assert response.status_code in (200, 204)
    assert response.headers.get("Access-Control-Allow-Origin") in ("*", ORIGIN)
    assert "POST" in response.headers.get("Access-Control-Allow-Methods", "")


def test_cors_stays_off_for_credentials_the_staff_endpoint_and_the_instant_route(api, meeting_type, settings):
    response = api.get("/api/v1/meeting-types/intro", HTTP_ORIGIN=ORIGIN)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Retry-After" in response.headers.get("Access-Control-Expose-Headers", "")
    for path in ("/api/v1/route", "/api/v1/bookings/id/1/outcome"):
        preflight = api.options(path, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert "Access-Control-Allow-Origin" not in preflight.headers, path
