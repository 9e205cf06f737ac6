"""A meeting type changed between a booking and the retry of its request with the same Idempotency-Key
(deactivated, a question added): the retry replays the first response (docs/booking-api.md: the same key and
body "returns the first response again"), it is not told the booking failed."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from booking.models import Booking, MeetingType
from booking.services import booking_create
from routing.models import Pool
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.foundation.test_foundation_admin_inputs import form_data

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 2 March 2026


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def reps(*names):
    return [make_rep(name, tz="UTC", days=range(7)) for name in names]


def save_page(client, url: str, **changes) -> None:
    """Post an admin change page as it is rendered, with ``changes`` (field name → posted value)."""
    data = form_data(client.get(url))
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].errors


def pool_page(pool: Pool) -> str:
    return reverse("admin:routing_pool_change", args=[pool.pk])


def hosts_of_next(meeting_type_id: int, n: int, day: dt.datetime | None = None) -> Counter:
    """Book ``n`` half-hour slots one after another from ``day`` (default 3 March 09:00 UTC; the meeting
    type read afresh, as a request would) and count who hosts them, by name."""
    day = day or at(2026, 3, 3, 9)
    meeting_type = MeetingType.objects.select_related("pool").get(pk=meeting_type_id)
    got: Counter = Counter()
    for i in range(n):
        body = booking_create(
            meeting_type=meeting_type,
            start=day + dt.timedelta(minutes=30 * i),
            name="Pat",
            email=f"pat{i}@example.org",
            timezone="UTC",
            now=NOW,
        ).body
        got.update(h.rep.name for h in Booking.objects.get(pk=body["id"]).hosts.filter(active=True))
    return got


# --- the fairness period changed with a member who joined at the mean of the old one


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
