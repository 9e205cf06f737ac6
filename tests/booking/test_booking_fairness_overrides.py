"""Fairness after a booking moved back and forth between reps with non-counting overrides (``account_owner``)
and reschedules: the live ledger names one credit holder per seat, the one the booking's decision history
names (``routing.credit.credit_holder``, as cancellations and the insights replay read it). It inferred the
holder from the latest delta-0 ledger entries per rep, which say nothing about the order of the moves, and
counted such a booking for two reps or for nobody (docs/routing-rules.md: "one booking never counts
twice")."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from booking.models import Booking
from booking.services import booking_create, booking_reassign, booking_reschedule
from calendars.models import BusyInterval
from routing.ledger import member_count, pool_ledger
from routing.models import PoolMember
from routing.overrides import OverrideCode
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 4, 9, tzinfo=UTC)  # a Wednesday
AO, REBALANCE = OverrideCode.ACCOUNT_OWNER, OverrideCode.REBALANCE


@pytest.fixture(autouse=True)
def no_live_calendars(monkeypatch):
    monkeypatch.setattr("booking.services.routing.hosts_busy_live", lambda *a, **k: set())


@pytest.fixture
def team():
    """A ``first_available`` pool of four reps in UTC working every day 08:00-20:00, and its meeting type."""
    reps = [make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben", "Cy", "Dee")]
    pool = make_pool("first_available", reps, fairness_period="month")
    return pool, make_meeting_type(pool, horizon_days=14), reps


def counts(pool) -> dict[str, float]:
    """Each member's fairness count as the booking path reads it, by rep name."""
    members = list(PoolMember.objects.filter(pool=pool).select_related("rep"))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=NOW)
    return {m.rep.name: member_count(m, ledger) for m in members}


def book(meeting_type, start) -> tuple[int, str]:
    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="UTC", now=NOW
    ).body
    return body["id"], body["manage_url"].rsplit("/", 1)[-1]


def reassign(booking_id: int, rep, code) -> None:
    member = PoolMember.objects.get(pool__bookings__pk=booking_id, rep=rep)
    with time_machine.travel(NOW, tick=False):
        booking_reassign(booking_id=booking_id, to_member_id=member.pk, code=code, reason="", now=NOW)


def host_of(booking_id: int) -> str:
    return Booking.objects.get(pk=booking_id).hosts.get(active=True).rep.name


def test_account_owner_override_to_a_rep_who_once_held_the_seat_without_credit_charges_two_reps(team):
    """One booking, first Ana's. An admin hands it to its account owner Ben (``account_owner``: Ana keeps
    the credit, Ben is not charged), then rebalances it to Cy (a counting override: the credit moves from
    Ana to Cy), then hands it back to the account owner Ben (``account_owner`` again: Cy keeps the credit,
    Ben is not charged). One booking, one credit: Cy's.

    What the reps see: the pool counts the one booking for both Cy and Ben, so Ben is passed over for a
    booking he never got credit for (and the pool's counts add up to more bookings than it has).

    Cause: routing/ledger.py ``override_hosts`` counts Ben's active host row because Ben's latest
    ``reassigned_from`` has delta 0 — but that entry (written by ``booking_reassign`` when the rebalance
    released Ben, who held no credit) means "Ben held no credit", not "Ben kept it"."""
    pool, meeting_type, (ana, ben, cy, _dee) = team
    booking_id, _ = book(meeting_type, NOW + dt.timedelta(days=2))
    assert host_of(booking_id) == "Ana"
    reassign(booking_id, ben, AO)
    reassign(booking_id, cy, REBALANCE)
    reassign(booking_id, ben, AO)
    assert host_of(booking_id) == "Ben"
    assert counts(pool) == {"Ana": 0, "Ben": 0, "Cy": 1, "Dee": 0}


def test_account_owner_override_there_back_and_there_again_charges_nobody(team):
    """One booking, first Ana's. An admin hands it to its account owner Dee, back to Ana, and to Dee again,
    each time with ``account_owner`` (does not count for fairness: "the rep the booking left keeps the
    credit, the new rep is not charged"). Ana kept the credit throughout, as the booking's own decision
    history says (``booking.services.manage._credit_holder`` names Ana, and a cancellation credits Ana back).

    What the reps see: the booking counts for nobody — Ana stands at 0 and is handed the pool's next
    booking as if she had had none, ahead of Ben, Cy and Dee who had none either.

    Cause: routing/ledger.py ``override_hosts``: Ana's row, reassigned away, counts only "when its latest
    reassigned_to is not delta 0"; her latest ``reassigned_to`` is the delta-0 entry of the hand-back to
    her (step 2), so the row she left in step 3 is dropped although she kept the credit."""
    pool, meeting_type, (ana, _ben, _cy, dee) = team
    booking_id, _ = book(meeting_type, NOW + dt.timedelta(days=2))
    assert host_of(booking_id) == "Ana"
    reassign(booking_id, dee, AO)
    reassign(booking_id, ana, AO)
    reassign(booking_id, dee, AO)
    assert host_of(booking_id) == "Dee"
    assert counts(pool) == {"Ana": 1, "Ben": 0, "Cy": 0, "Dee": 0}
    # as the reps feel it: the next booking goes to one of those who have had none, not to Ana
    next_id, _ = book(meeting_type, NOW + dt.timedelta(days=3))
    assert host_of(next_id) != "Ana"


def test_reschedule_then_account_owner_override_counts_the_booking_twice(team):
    """Found by a long random sequence (week period): a booking handed to its account owner Ben (Ana keeps
    the credit), then moved by the prospect to a time only Ana is free, so routing gives it back to Ana (the
    credit moves to her as a new assignment); Ben's other meeting is called off and the booking is handed
    to Ben again with ``account_owner``. Ana holds the credit (the booking's history says so:
    ``booking.services.manage._credit_holder``; a cancellation would credit Ana back); Ben is not charged.

    What the reps see: the live ledger counts the booking for Ana and for Ben, so Ben is passed over for a
    booking he was never charged for. (The insights replay, which rebuilds a booking changed in its period
    from this history, counted it for Ana only at the same instant in the sequence: the simulator and live
    routing disagreed about who was next up.)

    Cause: ``booking_reschedule`` (booking/services/manage.py, ``without_credit``) writes a delta-0
    ``reassigned_from`` for Ben, who held no credit, and routing/ledger.py ``override_hosts`` reads Ben's
    latest delta-0 ``reassigned_from`` as "Ben kept the credit"."""
    pool, meeting_type, (ana, ben, cy, dee) = team
    start = NOW + dt.timedelta(days=2)
    booking_id, token = book(meeting_type, start)
    assert host_of(booking_id) == "Ana"
    reassign(booking_id, ben, AO)
    moved = start + dt.timedelta(hours=1)
    for rep in (ben, cy, dee):  # only Ana is free at the new time: routing gives it back to her
        BusyInterval.objects.create(rep=rep, start=moved, end=moved + dt.timedelta(minutes=30))
    with time_machine.travel(NOW, tick=False):
        booking_reschedule(token=token, start=moved, now=NOW)
    assert host_of(booking_id) == "Ana"
    BusyInterval.objects.filter(rep=ben).delete()  # Ben's other meeting is called off: he is free again
    reassign(booking_id, ben, AO)
    assert host_of(booking_id) == "Ben"
    assert counts(pool) == {"Ana": 1, "Ben": 0, "Cy": 0, "Dee": 0}
