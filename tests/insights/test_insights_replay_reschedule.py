"""Replay with recorded reschedules: a booking rescheduled in the period is replayed at its original start at
its original decision time, and moved at its reschedule time (old slot freed, new one taken) with its hosts
kept or routed again, as recorded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from booking.models import Booking
from booking.services import booking_cancel, booking_create, booking_reschedule
from calendars.models import BusyInterval
from insights.selectors import current_policy, replay_bookings, replay_leads
from insights.services import simulation_run
from insights.sim_types import Move
from insights.simulator import Lead, simulate
from routing.selectors import meeting_spec
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db


def create(meeting_type, start, now, n):
    result = booking_create(
        meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    return Booking.objects.get(pk=result.body["id"]), result.body["manage_url"].rsplit("/", 1)[-1]


def host_of(booking) -> int:
    return booking.hosts.get(active=True).rep_id


def replay(pool, start, end):
    bookings = replay_bookings(pool, start=start, end=end)
    policy = current_policy(pool, start=start, end=end, replayed=bookings)
    return policy, replay_leads(bookings, end=end)


@pytest.fixture
def rerouted(meeting_type, reps):
    """Ana takes booking 1 (Tue 09:00); booking 2 then goes to Ben (Ana 1, Ben 0). Booking 1 is moved to
    10:00, when Ana is busy: routed again, to Cy (Ana 1, Ben 1, Cy 0); Ana loses the credit, so booking 3
    goes to her."""
    BusyInterval.objects.create(rep=reps[0], start=at(3, 10), end=at(3, 10, 30))
    one, token = create(meeting_type, at(3, 9), at(2, 9), 1)
    two, _ = create(meeting_type, at(3, 13), at(2, 9, 30), 2)
    booking_reschedule(token=token, start=at(3, 10), now=at(2, 10))
    three, _ = create(meeting_type, at(3, 14), at(2, 11), 3)
    one.refresh_from_db()
    live = [reps[2].pk, reps[1].pk, reps[0].pk]
    assert [host_of(b) for b in (one, two, three)] == live
    assert one.decision["history"][-1]["kept_hosts"] is False
    return live, token


def test_rerouted_reschedule_is_replayed_at_both_instants(meeting_type, reps, rerouted):
    live, _token = rerouted
    policy, leads = replay(meeting_type.pool, at(2, 0), at(9, 0))
    assert leads[0].start == at(3, 9) and leads[0].recorded_hosts == (reps[2].pk,)
    assert leads[0].moves == (Move(at(2, 10), at(3, 10), False, frozenset()),)
    out = simulate(policy, leads)
    assert out.assignments == [(r,) for r in live] and out.reproduced == 3 and out.moved == 0
    assert out.counts == {reps[0].pk: 1, reps[1].pk: 1, reps[2].pk: 1}
    # replayed at its current start only (the earlier behaviour), booking 1 would go to Ben at once
    flat = [replace(lead, start=at(3, 10), moves=()) if lead.moves else lead for lead in leads]
    assert simulate(policy, flat).assignments[0] == (reps[1].pk,)
    result = simulation_run(pool=meeting_type.pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 3


def test_reschedule_after_the_period_is_left_out(meeting_type, reps, rerouted):
    policy, leads = replay(meeting_type.pool, at(2, 0), at(2, 10))
    assert [lead.start for lead in leads] == [at(3, 9), at(3, 13)]
    assert leads[0].moves == () and leads[0].recorded_hosts == (reps[0].pk,)
    assert simulate(policy, leads).reproduced == 2


def test_kept_hosts_free_the_old_slot_at_the_reschedule(reps):
    pool = make_pool("first_available", [reps[0]], fairness_period="week")
    solo = make_meeting_type(pool, slug="solo")
    one, token = create(solo, at(3, 9), at(2, 9), 1)
    booking_reschedule(token=token, start=at(3, 11), now=at(2, 10))
    two, _ = create(solo, at(3, 9), at(2, 12), 2)  # the freed 09:00
    one.refresh_from_db()
    assert one.decision["history"][-1]["kept_hosts"] is True and host_of(two) == reps[0].pk
    policy, leads = replay(pool, at(2, 0), at(9, 0))
    assert leads[0].moves == (Move(at(2, 10), at(3, 11), True, frozenset()),)
    out = simulate(policy, leads)
    assert out.reproduced == 2 and out.moved == 0 and out.counts == {reps[0].pk: 2}
    # the old slot is held until the reschedule: a request for 09:00 before it is moved, after it is not
    spec = meeting_spec(solo)
    probes = [
        Lead(at=at(2, 9, 30), meeting=spec, start=at(3, 9)),
        Lead(at=at(2, 11), meeting=spec, start=at(3, 9)),
    ]
    for probe, moved in zip(probes, (1, 0), strict=True):
        out = simulate(policy, sorted([leads[0], probe], key=lambda lead: lead.at))
        assert out.moved == moved and out.no_slot == 0


def test_cancellation_after_a_reschedule_frees_the_new_slot_of_the_new_host(meeting_type, reps, rerouted):
    """Booking 1 (moved to 10:00, Cy) is cancelled: Cy's 10:00 and credit are freed, so booking 4 for 10:00
    goes to Cy (Ana 1, Ben 1, Cy 0; Ana is busy then)."""
    live, token = rerouted
    booking_cancel(token=token, now=at(2, 12))
    four, _ = create(meeting_type, at(3, 10), at(2, 13), 4)
    assert host_of(four) == reps[2].pk
    policy, leads = replay(meeting_type.pool, at(2, 0), at(9, 0))
    assert leads[0].cancelled_at == at(2, 12) and leads[0].moves
    out = simulate(policy, leads)
    assert out.assignments == [(r,) for r in live] + [(reps[2].pk,)]
    assert out.reproduced == 4 and out.cancellations == 1 and out.moved == 0
