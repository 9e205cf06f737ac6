"""The booking carries the booking page's visitor id: the page hands it to book.js, the API stores it."""

from __future__ import annotations

import pytest

from booking.models import Booking
from booking.pages import VISITOR_COOKIE
from tests.booking.booking_factories import body
from tests.booking.test_booking_pages import config_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def test_visitor_is_stored(api, meeting_type):
    response = api.post(URL, body(visitor="a1B2_c3-D4e5f6g7h8"), format="json")
    assert response.status_code == 201, response.json()
    assert Booking.objects.get(pk=response.json()["id"]).visitor_id == "a1B2_c3-D4e5f6g7h8"


def test_visitor_is_optional(api, meeting_type):
    response = api.post(URL, body(), format="json")
    assert response.status_code == 201, response.json()
    assert Booking.objects.get(pk=response.json()["id"]).visitor_id == ""


@pytest.mark.parametrize(
    "bad", ["has space", "semi;colon", "ümlaut", "x" * 65, "line\n", " padded", ["abc"], {"a": 1}]
)
def test_bad_visitor_is_400_with_field(api, meeting_type, bad):
    response = api.post(URL, body(visitor=bad), format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid" and "visitor" in response.json()["errors"]
    assert not Booking.objects.exists()


def test_visitor_changes_the_idempotent_request(api, meeting_type):
    first = api.post(URL, body(visitor="one"), format="json", headers={"Idempotency-Key": "k-visitor-1"})
    assert first.status_code == 201
    again = api.post(URL, body(visitor="one"), format="json", headers={"Idempotency-Key": "k-visitor-1"})
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    other = api.post(URL, body(visitor="two"), format="json", headers={"Idempotency-Key": "k-visitor-1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert Booking.objects.count() == 1


def test_booking_page_hands_the_cookie_visitor_to_book_js(client, meeting_type):
    first = client.get("/book/intro")
    visitor = first.cookies[VISITOR_COOKIE].value
    assert config_of(first)["visitor"] == visitor
    # the cookie is httponly: the page, not document.cookie, gives the id to the script
    assert first.cookies[VISITOR_COOKIE]["httponly"]
    again = client.get("/book/intro")
    assert VISITOR_COOKIE not in again.cookies and config_of(again)["visitor"] == visitor


def test_page_visitor_flows_into_the_booking(client, api, meeting_type):
    visitor = config_of(client.get("/book/intro"))["visitor"]
    response = api.post(URL, body(visitor=visitor), format="json")
    assert response.status_code == 201
    assert Booking.objects.get(pk=response.json()["id"]).visitor_id == visitor
