"""A routed booking's 409 offers the route's times, however the conflict was found: seen taken before or
under the locks, or refused by PostgreSQL's exclusion constraint (a concurrent overlap)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError

from booking.errors import SlotUnavailable
from booking.selectors import alternatives
from booking.services import booking_create
from leads.tokens import Route
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db]


def test_the_exclusion_constraints_409_offers_the_routes_times(monkeypatch):
    """Before, the exclusion constraint's branch left the route out: the prospect routed to the Enterprise
    pool was offered the meeting type's pool's times, which the route will not book."""
    ana = make_rep("Ana")  # the meeting type's pool: 09:00-17:00 Berlin
    ben = make_rep("Ben", tz="America/New_York")  # the route's pool: 09:00-17:00 New York
    meeting_type = make_meeting_type(make_pool("first_available", [ana]), slug="intro-hunt")
    enterprise = make_pool("first_available", [ben])
    route = Route(pool=enterprise)
    start = dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)  # 09:00 New York, 15:00 Berlin

    def refused(*args, **kwargs):  # what the exclusion constraint answers to a concurrent overlap
        raise IntegrityError('conflicting key value violates exclusion constraint "bookinghost_no_overlap"')

    monkeypatch.setattr("booking.services.create.sqlwrites.insert_many", refused)
    with pytest.raises(SlotUnavailable) as caught:
        booking_create(
            meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="UTC",
            now=NOW, route=route,
        )  # fmt: skip
    offered = alternatives(meeting_type, after=start, zone=dt.UTC, now=NOW, route=route)
    assert caught.value.extra["alternatives"] == offered
