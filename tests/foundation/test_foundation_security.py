"""Security properties pinned: the manage pages keep their token out of referers, frames and caches; the
Microsoft validation echo cannot be sniffed as HTML; a spoofed X-Forwarded-For does not escape the rate
limit; cookie- or key-authenticated endpoints answer no CORS."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.foundation.conftest import book_demo


@pytest.mark.django_db
def test_manage_pages_keep_their_token_out_of_referers_and_frames(booking_token):
    client = APIClient()
    for path in (f"/manage/{booking_token}", f"/manage/{booking_token}/confirmation"):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Referrer-Policy"] in {"no-referrer", "same-origin", "strict-origin"}
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
        assert response["Cache-Control"] == "no-store"


@pytest.fixture
def booking_token(demo) -> str:
    return book_demo(APIClient())["manage_token"]


@pytest.mark.django_db
def test_microsoft_validation_echo_is_plain_text_not_sniffed(client):
    payload = "<script>alert(1)</script>"
    response = client.post(f"/calendars/webhooks/microsoft?validationToken={payload}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_spoofed_x_forwarded_for_does_not_escape_the_rate_limit(settings, demo):
    settings.API_READ_RATE_LIMIT = "3/min"
    cache.clear()
    client = APIClient()
    codes = [
        client.get("/api/v1/meeting-types", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(5)
    ]
    assert codes[-1] == 429, codes


@pytest.mark.django_db
def test_cookie_or_key_authenticated_endpoints_answer_no_cors(client, settings):
    settings.INSTANT_ROUTE_API_KEYS = ["k" * 32]
    evil = "https://evil.example"
    for method, path in [
        ("post", "/api/v1/bookings/id/1/outcome"),
        ("post", "/api/v1/route"),
        ("options", "/api/v1/route"),
        ("get", "/admin/"),
        ("get", "/calendars/"),
    ]:
        response = getattr(client, method)(path, HTTP_ORIGIN=evil)
        assert "Access-Control-Allow-Origin" not in response.headers, path
