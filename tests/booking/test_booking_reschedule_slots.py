"""``GET /api/v1/bookings/{token}/slots``: the times a booking can move to, which the manage page's picker
shows. The meeting type's own slots are the wrong list there: a round-robin pool offers only the next-up
rep's times (never the current host's), and the booking's own time blocks its host, so a later start
overlapping it was not offered although the reschedule keeps the host there."""

from __future__ import annotations

import pytest

from booking.models import Booking
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
DAY = {"start": "2026-03-03", "end": "2026-03-03", "timezone": "UTC"}


def book(api, slug: str, start: str) -> dict:
    data = {"start": start, "name": "Pat", "email": "pat@example.org", "timezone": "Europe/Berlin"}
    response = api.post(f"/api/v1/meeting-types/{slug}/bookings", data, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def starts(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [s["start"][11:16] for s in response.json()["slots"]]


def test_a_round_robin_booking_can_move_to_its_hosts_times_and_to_the_pools(api):
    ana = make_rep("Ana", hours=(9, 12))  # Berlin: 08:00–11:00 UTC
    bo = make_rep("Bo", hours=(13, 17))  # 12:00–16:00 UTC
    make_meeting_type(make_pool("round_robin", [ana, bo]), slug="rr")
    created = book(api, "rr", "2026-03-03T09:00:00Z")
    assert [h["name"] for h in created["hosts"]] == ["Ana"]
    pool_times = starts(api.get("/api/v1/meeting-types/rr/slots", DAY))
    assert pool_times[0] == "12:00" and "09:30" not in pool_times  # Bo is next up: only his times
    token = created["manage_token"]
    movable = starts(api.get(f"/api/v1/bookings/{token}/slots", DAY))
    assert movable[:6] == ["08:00", "08:30", "09:30", "10:00", "10:30", "12:00"]  # Ana's (not 09:00), Bo's
    assert set(pool_times) <= set(movable)
    moved = api.post(f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T10:30:00Z"}, format="json")
    assert [h["name"] for h in moved.json()["hosts"]] == ["Ana"]


def test_a_start_overlapping_the_bookings_own_time_is_offered(api):
    make_meeting_type(make_pool("first_available", [make_rep("Ana")]), slug="solo", duration_minutes=60)
    created = book(api, "solo", "2026-03-03T09:00:00Z")  # 09:00–10:00 UTC
    assert "09:30" not in starts(api.get("/api/v1/meeting-types/solo/slots", DAY))
    token = created["manage_token"]
    movable = starts(api.get(f"/api/v1/bookings/{token}/slots", DAY))
    assert "09:30" in movable and "08:30" in movable and "09:00" not in movable
    moved = api.post(f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T09:30:00Z"}, format="json")
    assert moved.status_code == 200 and moved.json()["start"].startswith("2026-03-03T10:30:00+01:00")


def test_the_zone_defaults_to_the_prospects_and_errors_are_plain(api):
    make_meeting_type(make_pool("first_available", [make_rep("Ana")]), slug="solo")
    created = book(api, "solo", "2026-03-03T09:00:00Z")
    url = f"/api/v1/bookings/{created['manage_token']}/slots"
    body = api.get(url, {"start": "2026-03-03", "end": "2026-03-03"}).json()
    assert body["timezone"] == "Europe/Berlin" and body["slots"][0]["start"] == "2026-03-03T09:00:00+01:00"
    assert api.get(url, {"end": "2026-01-01", "start": "2026-03-03"}).status_code == 400
    assert api.get(url, {"start": "2026-03-01", "end": "2026-06-01"}).status_code == 400
    assert api.get(url, {"timezone": "Mars/Olympus"}).status_code == 400
    assert api.get("/api/v1/bookings/" + "x" * 43 + "/slots").status_code == 404
    api.post(f"/api/v1/bookings/{created['manage_token']}/cancel", {}, format="json")
    gone = api.get(url)
    assert gone.status_code == 409 and gone.json()["code"] == "booking_already_cancelled"
    assert Booking.objects.get().status == "cancelled"


def test_the_manage_page_picks_from_the_bookings_own_times(api, client):
    make_meeting_type(make_pool("first_available", [make_rep("Ana")]), slug="solo")
    token = book(api, "solo", "2026-03-03T09:00:00Z")["manage_token"]
    page = client.get(f"/manage/{token}").content.decode()
    assert f"/api/v1/bookings/{token}/slots" in page and "/api/v1/meeting-types/solo/slots" not in page
