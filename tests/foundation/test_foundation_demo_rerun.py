"""A new user's journey from a fresh clone (README "The two commands", docs/config.md "Demo data"):
``make run`` loads the demo, a prospect books it, and the next day ``make run`` loads the demo again."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from booking.models import Booking
from booking.selectors import bookings_needing_attention
from calendars.models import BusyInterval
from tests.foundation.conftest import run

pytestmark = pytest.mark.django_db


def book_every_other_slot(api: APIClient, slug: str, day: str, limit: int) -> list[dict]:
    """Book ``limit`` of ``slug``'s offered starts on ``day`` (UTC), every other one, as prospects would."""
    query = {"start": day, "end": day, "timezone": "UTC"}
    slots = api.get(f"/api/v1/meeting-types/{slug}/slots", query).json()
    booked = []
    for n, slot in enumerate(slots["slots"][::2][:limit]):
        body = {"start": slot["start"], "name": f"Prospect {n}", "email": f"p{n}@example.org"}
        body["timezone"] = "UTC"
        response = api.post(f"/api/v1/meeting-types/{slug}/bookings", body, format="json")
        if response.status_code == 201:
            booked.append(response.json())
    return booked


def test_running_make_run_again_the_next_day_does_not_double_book_the_demo_reps(demo, clock):
    """``make run`` runs ``manage.py demo`` every time it starts, and the demo's fake busy times "move with
    the date" (docs/config.md). A first-time user books a few demo meetings, stops the server and runs
    ``make run`` again the next day: the demo busy times written then do not land on the meetings the demo
    reps already have (they did: the admin's *Needs attention* filter lit up with "other busy time during
    the meeting" for bookings nobody touched, and a rep looked double-booked in their own calendar). Found
    by a helper walking through a fresh clone; failed before the fix."""
    api = APIClient()
    booked = []
    for day in ("2026-03-03", "2026-03-04", "2026-03-05"):
        for slug in ("demo", "discovery-call"):
            booked += book_every_other_slot(api, slug, day, limit=6)
    assert len(booked) >= 12
    ids = [b["id"] for b in booked]
    now = dt.datetime.now(dt.UTC)
    assert not bookings_needing_attention(Booking.objects.filter(pk__in=ids), "busy", now=now).exists()

    clock.shift(dt.timedelta(days=1))  # the next morning: make run again
    run("demo")

    now = dt.datetime.now(dt.UTC)
    attention = bookings_needing_attention(Booking.objects.filter(pk__in=ids), "busy", now=now)
    flagged = list(attention.values_list("pk", flat=True))
    overlapping = [
        (b.pk, h.rep_id, b.start.isoformat())
        for b in Booking.objects.filter(pk__in=ids).prefetch_related("hosts")
        for h in b.hosts.all()
        if h.active
        and BusyInterval.objects.filter(
            rep_id=h.rep_id, external_id__startswith="demo:", start__lt=b.end, end__gt=b.start
        ).exists()
    ]
    assert flagged == [] and overlapping == [], (flagged, overlapping)
