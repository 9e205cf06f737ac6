"""Figures an admin reads as the fairness proof: the replay counts what happens after its last booking
(cancellations once per booking, assignments without a booking), the hosts it compares with live as they
stood at the end, and the dashboard's per-rep rows add up to the pool's bookings when a rep left the pool."""

from __future__ import annotations

import pytest

from booking.models import Booking
from booking.services import booking_cancel, booking_create
from booking.services.reassign import booking_reassign
from insights import kpis
from insights.services import simulation_run
from routing.models import LedgerEntry, PoolMember
from routing.services import ledger_assigned
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db


def create(meeting_type, start, now, n):
    """A booking made live at ``now``, and its manage token."""
    result = booking_create(
        meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    return Booking.objects.get(pk=result.body["id"]), result.body["manage_url"].rsplit("/", 1)[-1]


def test_a_cancellation_after_the_last_lead_is_a_cancellation_replayed(reps):
    """Two bookings on 2 March; the second is cancelled an hour after it was made, well inside the replayed
    week. docs/insights.md: a replayed booking cancelled before ``end`` frees its slot at its cancellation
    and "cancellations replayed" counts it. Events still pending after the last lead are drained without
    the cancellations, so the page says 0."""
    pool = make_pool("first_available", [reps[0]], fairness_period="week")
    solo = make_meeting_type(pool, slug="solo")
    create(solo, at(3, 9), at(2, 9), 1)
    _booking, token = create(solo, at(3, 10), at(2, 10), 2)
    booking_cancel(token=token, now=at(2, 11))
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 2
    assert result["cancellations"] == 1


def test_an_assignment_without_a_booking_after_the_last_lead_is_replayed(meeting_type, reps):
    """An instant route (``assigned`` entry without a booking) at 10:00, after the period's only booking
    (09:00): docs/insights.md says those in ``[start, end)`` are applied at their ``created_at``, figure
    ``instant_assignments``. Only those before some lead are applied: the figure reads 0."""
    create(meeting_type, at(3, 9), at(2, 9), 1)
    ledger_assigned(pool_id=meeting_type.pool_id, booking_id=None, rep_ids=[reps[1].pk])
    LedgerEntry.objects.filter(booking__isnull=True).update(created_at=at(2, 10))
    result = simulation_run(pool=meeting_type.pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["instant_assignments"] == 1


def test_a_group_booking_cancelled_is_one_cancellation_not_one_per_host():
    """A group pool (one AE and one SE per meeting): one booking made and cancelled in the period, one made
    before it and cancelled in it. Two cancellations; the simulator counts one per host seat: 4."""
    ae, se = make_rep("Ada"), make_rep("Sol")
    pool = make_pool("group", [ae, se], roles=["ae", "se"], fairness_period="week")
    group = make_meeting_type(pool, slug="duo")
    _booking, token = create(group, at(3, 9), at(2, 9), 1)
    booking_cancel(token=token, now=at(2, 10))
    _booking, token = create(group, at(5, 9), at(1, 9), 2)  # decided before the period
    booking_cancel(token=token, now=at(2, 10, 30))
    create(group, at(3, 10), at(2, 11), 3)
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 2
    assert result["cancellations"] == 2


def test_a_reassigned_booking_is_not_reported_as_same_hosts_as_live(meeting_type, reps):
    """A booking of the period routed to its rep, then reassigned (customer request) to another before the
    period's end. Reassignments are not replayed (documented), so the replay keeps the first host — but
    "same hosts as live" compares the hosts at ``end`` (docs/insights.md) and must show the mismatch. It
    compares with the decision record's hosts, which a reassignment does not change: 1 of 1 "same"."""
    booking, _token = create(meeting_type, at(3, 9), at(2, 9), 1)
    first = booking.hosts.get().rep_id
    other = next(r for r in reps if r.pk != first)
    member = PoolMember.objects.get(pool=meeting_type.pool, rep=other)
    booking_reassign(booking_id=booking.pk, to_member_id=member.pk, code="customer_request", now=at(2, 12))
    assert set(booking.hosts.filter(active=True).values_list("rep_id", flat=True)) == {other.pk}
    result = simulation_run(pool=meeting_type.pool, start=at(2, 0), end=at(9, 0))["results"][0]
    simulated = {r["rep_id"] for r in result["reps"] if r["count"]}
    assert simulated == {first}  # the replay's host: the live host at ``end`` is ``other``
    assert result["reproduced"] == 0


def test_a_rep_who_left_the_pool_keeps_their_bookings_in_the_per_rep_table(meeting_type, reps):
    """Three bookings, one each; then Cy leaves the pool. The per-rep table of that week drops Cy's row but
    keeps Cy's booking in every share's denominator: the rows add up to 2 of 3 bookings, shares to 2/3, and
    Ana and Ben (fairly 1 of 3 each when routed) cannot be checked against who took the rest."""
    times = [(at(3, 9), at(2, 9)), (at(3, 10), at(2, 10)), (at(3, 11), at(2, 11))]
    made = [create(meeting_type, start, now, n)[0] for n, (start, now) in enumerate(times)]
    assert {b.hosts.get().rep_id for b in made} == {r.pk for r in reps}
    PoolMember.objects.filter(pool=meeting_type.pool, rep=reps[2]).delete()
    table = kpis.rep_rows(meeting_type.pool, at(1, 0), at(8, 0))
    rows = {r["rep_id"]: r for r in table["rows"]}
    assert sum(r["bookings"] for r in table["rows"]) == table["totals"]["bookings"] == 3
    assert sum(r["share"] for r in table["rows"]) == pytest.approx(1.0)
    assert rows[reps[2].pk]["bookings"] == 1
