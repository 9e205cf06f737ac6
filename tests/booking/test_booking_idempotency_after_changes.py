"""A meeting type changed between a booking and the retry of its request with the same Idempotency-Key
(deactivated, a question added): the retry replays the first response (docs/booking-api.md: the same key and
body "returns the first response again"), it is not told the booking failed."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from booking.models import Booking, MeetingType
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 2 March 2026


def reps(*names):
    return [make_rep(name, tz="UTC", days=range(7)) for name in names]


@pytest.mark.parametrize("change", ["deactivated", "question added"])
def test_a_retry_with_the_same_idempotency_key_replays_the_booking_after_the_meeting_type_changed(change):
    """A prospect's booking succeeds but the response is lost (a dropped connection); the page retries
    with the same Idempotency-Key and body, as docs/booking-api.md tells clients to ("returns the first
    response again ... and books nothing more"). Meanwhile an admin deactivated the meeting type, or
    added a required question. The retry is answered 404 "No such meeting type." (or 400 for the new
    question) although the booking exists and its confirmation is on its way: the view looks the active
    meeting type up and validates the body against its questions (``booking.api.views.BookingCreate``)
    before ``booking_create`` replays the stored response."""
    (ana,) = reps("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]))
    api = APIClient()
    url = f"/api/v1/meeting-types/{meeting_type.slug}/bookings"
    body = {
        "start": "2026-03-03T10:00:00+01:00",
        "name": "Pat",
        "email": "pat@example.org",
        "timezone": "UTC",
    }
    with time_machine.travel(NOW, tick=False):
        first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="form-1234")
        assert first.status_code == 201
        if change == "deactivated":
            MeetingType.objects.filter(pk=meeting_type.pk).update(active=False)
        else:
            question = {"key": "size", "label": "Company size", "type": "text", "required": True}
            MeetingType.objects.filter(pk=meeting_type.pk).update(questions=[question])
        again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="form-1234")
    assert Booking.objects.count() == 1
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.json()
    assert again.json()["id"] == first.json()["id"]
