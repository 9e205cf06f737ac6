"""Assignments without a booking (an instant route, a lead routed by hand) count in the pool's fairness
ledger like bookings, in the current period only, so meeting routing sees them too."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from booking.models import Booking
from routing.ledger import pool_ledger
from routing.models import LedgerEntry
from routing.services import ledger_assigned
from tests.booking.booking_factories import NOW, body, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def test_counted_in_the_current_period_only_and_as_last_assignment():
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben], fairness_period="week")
    with time_machine.travel(NOW - dt.timedelta(days=14), tick=False):  # an earlier week
        ledger_assigned(pool_id=pool.pk, booking_id=None, rep_ids=[ben.pk], reason="instant route: lead 1")
    with time_machine.travel(NOW, tick=False):
        ledger_assigned(pool_id=pool.pk, booking_id=None, rep_ids=[ana.pk], reason="instant route: lead 2")
        ledger_assigned(pool_id=pool.pk, booking_id=None, rep_ids=[ana.pk], reason="instant route: lead 3")
    ledger = pool_ledger(pool, [ana.pk, ben.pk], now=NOW + dt.timedelta(minutes=5))
    assert ledger.raw == {ana.pk: 2.0}
    assert ledger.last_assigned == {ana.pk: NOW, ben.pk: NOW - dt.timedelta(days=14)}
    assert LedgerEntry.objects.filter(booking__isnull=True).count() == 3


def test_a_rep_who_just_took_a_lead_is_not_next_up_for_a_meeting(api):
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben])
    meeting_type = make_meeting_type(pool)
    with time_machine.travel(NOW, tick=False):
        ledger_assigned(pool_id=pool.pk, booking_id=None, rep_ids=[ana.pk], reason="instant route: lead 1")
        url = f"/api/v1/meeting-types/{meeting_type.slug}/bookings"
        made = api.post(url, body(answers={}), format="json")
    assert made.status_code == 201, made.json()
    assert Booking.objects.get().hosts.get().rep == ben
