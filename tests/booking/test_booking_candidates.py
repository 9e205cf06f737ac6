"""Which reps a booking locks: the members free at its start by phase one
(``routing.selectors.free_members``), on SQLite and PostgreSQL; and a host outside them is never booked."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.errors import TryAgain
from booking.models import Booking
from booking.services import booking_create
from booking.services import create as create_service
from calendars.models import BusyInterval
from routing.core import Interval
from routing.models import PoolMember
from routing.selectors import free_members, load_pool_calendars
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)  # Tuesday, 10:00 in Berlin


def _create(meeting_type, start=START, email="pat@example.org"):
    return booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email=email, timezone="Europe/Berlin"
    )


def test_free_members_are_those_free_at_the_start_by_phase_one():
    free, busy, inactive, booked = (make_rep(n) for n in ("Free", "Busy", "Off", "Booked"))
    afternoon = make_rep("PM", hours=(13, 17))
    pool = make_pool("first_available", [free, busy, afternoon, inactive, booked])
    PoolMember.objects.filter(pool=pool, rep=inactive).update(active=False)
    meeting_type = make_meeting_type(pool)
    BusyInterval.objects.create(
        rep=busy, start=START - dt.timedelta(minutes=15), end=START + dt.timedelta(hours=1)
    )
    _create(make_meeting_type(make_pool("round_robin", [booked])), email="first@example.org")
    calendars = load_pool_calendars(
        pool, meeting_type, now=NOW, window=Interval(START, START + dt.timedelta(minutes=30))
    )
    # a booking at the start does not rule its rep out here: host rows are read under the locks
    assert free_members(calendars, meeting_type, now=NOW, start=START) == sorted([free.pk, booked.pk])


def test_a_booking_with_every_candidate_booked_fails_before_the_locks():
    """The only rep free at the start (the other is off then) already hosts a booking there: 409 without
    opening the booking transaction."""
    rep, off = make_rep("Only"), make_rep("Off", hours=(13, 17))
    meeting_type = make_meeting_type(make_pool("first_available", [rep, off]))
    _create(meeting_type)
    with pytest.raises(create_service.SlotUnavailable):
        create_service._plan(meeting_type, start=START, now=NOW)


def test_a_host_outside_the_locked_reps_is_never_booked(monkeypatch):
    """Were the engine to pick a rep that was not locked (it cannot: ``free_members``), the booking is
    refused as retryable and nothing is written."""
    first, second = make_rep("A"), make_rep("B")
    meeting_type = make_meeting_type(make_pool("ranked", [first, second]))
    monkeypatch.setattr(create_service, "free_members", lambda *a, **k: [second.pk])  # first is ranked first
    with pytest.raises(TryAgain):
        _create(meeting_type)
    assert not Booking.objects.exists()
    monkeypatch.undo()
    assert _create(meeting_type).body["hosts"][0]["name"] == "A"
