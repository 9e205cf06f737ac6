"""An instant route's keyed retry replays its first answer after the meeting type changed (deactivated, or a
question added), as a booking's does."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from booking.models import MeetingType
from leads.models import Lead
from routing.models import LedgerEntry
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

KEY = "instant-replay-test-key-0123456789"
INSTANT = "/api/v1/route"
MONDAY_NOON = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)  # 12:00 in Berlin: make_rep's reps work


def _body(slug: str, **kw) -> dict:
    data = {"meeting_type": slug, "email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin"}
    data.update(kw)
    return data


def _deactivate(meeting_type: MeetingType) -> None:
    MeetingType.objects.filter(pk=meeting_type.pk).update(active=False)


def _ask_a_required_question(meeting_type: MeetingType) -> None:
    questions = [{"key": "seats", "label": "Seats", "type": "number", "required": True}]
    MeetingType.objects.filter(pk=meeting_type.pk).update(questions=questions)


@pytest.mark.parametrize("change", [_deactivate, _ask_a_required_question], ids=["deactivated", "question"])
@pytest.mark.django_db
def test_an_instant_route_retry_replays_after_the_meeting_type_changed(settings, change):
    """The phone system routes a caller (``POST /api/v1/route`` with ``Idempotency-Key``): the lead is
    stored and the rep charged, but the answer is lost (a dropped connection). Before the retry an admin
    deactivates the meeting type or adds a required question. The retry is answered 404 / 400: the phone
    system is told the route failed and never learns which rep took the caller, while the lead and the
    ledger entry stand. docs/routing-rules.md promises the key works "as for a booking", and
    docs/booking-api.md: "A retry replays even when the meeting type changed after the booking:
    deactivated ... or with a question added" (``BookingCreate.post`` falls back to ``booking_replay``);
    ``InstantRoute.post`` validates first and never looks at the key (leads/api.py:180-186)."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    meeting_type = make_meeting_type(make_pool("first_available", [make_rep("Ana"), make_rep("Ben")]), "call")
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {KEY}")
    headers = {"HTTP_IDEMPOTENCY_KEY": "call-0815"}
    with time_machine.travel(MONDAY_NOON, tick=False):
        first = client.post(INSTANT, _body("call"), content_type="application/json", **headers)
        change(meeting_type)
        retry = client.post(INSTANT, _body("call"), content_type="application/json", **headers)
    assert first.status_code == 200, first.content
    assert Lead.objects.count() == 1 and LedgerEntry.objects.count() == 1
    assert retry.status_code == 200, (retry.status_code, retry.content)
    assert retry.json()["lead_id"] == first.json()["lead_id"]
    assert retry.json()["rep"] == first.json()["rep"]
