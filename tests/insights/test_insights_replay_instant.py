"""Replay with assignments without a booking (``POST /api/v1/route``, leads routed by hand): those made before
the period start the ledger (within the fairness period, as ``routing.ledger.pool_ledger`` counts them),
those inside it count for their rep from their instant, under every policy; one taken back (the lead was
routed by hand to another rep) counts until the instant the credit moved, as the live ledger read it then."""

from __future__ import annotations

from dataclasses import replace

import pytest
import time_machine
from rest_framework.test import APIClient

from booking.models import Booking
from booking.services import booking_create
from insights.selectors import current_policy, replay_bookings, replay_leads
from insights.services import simulation_run
from insights.sim_types import LedgerMove
from insights.simulator import simulate
from leads.manual import lead_route_by_hand
from leads.models import Lead, RoutingRule
from routing.ledger import pool_ledger
from routing.models import LedgerEntry
from routing.services import ledger_assigned
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db
KEY = "insights-instant-route-key-0123456789"


def create(meeting_type, start, now, n):
    result = booking_create(
        meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    return Booking.objects.get(pk=result.body["id"]).hosts.get().rep_id


@pytest.fixture
def api(settings, meeting_type):
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    RoutingRule.objects.create(meeting_type=meeting_type, order=99, name="Everyone", pool=meeting_type.pool)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {KEY}")
    return client


def route_now(api, moment) -> int:
    body = {"meeting_type": "intro", "email": "lee@example.org", "name": "Lee", "timezone": "Europe/Berlin"}
    with time_machine.travel(moment, tick=False):
        response = api.post("/api/v1/route", {**body, "answers": {}, "utm": {}}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["rep"]["id"]


def replay(pool, start, end):
    bookings = replay_bookings(pool, start=start, end=end)
    policy = current_policy(pool, start=start, end=end, replayed=bookings)
    return policy, replay_leads(bookings, end=end)


def test_instant_route_between_two_bookings_is_replayed(api, meeting_type, reps):
    """Ana takes the first booking; an instant route at 10:00 goes to Ben (next up); so the second booking
    goes to Cy. A replay that ignored the instant route would give it to Ben."""
    first = create(meeting_type, at(3, 9), at(2, 9), 1)
    instant = route_now(api, at(2, 10))
    second = create(meeting_type, at(3, 10), at(2, 11), 2)
    assert (first, instant, second) == (reps[0].pk, reps[1].pk, reps[2].pk)
    entry = LedgerEntry.objects.get(booking__isnull=True)
    assert (entry.rep_id, entry.created_at) == (reps[1].pk, at(2, 10))

    pool = meeting_type.pool
    policy, leads = replay(pool, at(2, 0), at(9, 0))
    assert policy.instant == ((at(2, 10), reps[1].pk),)
    out = simulate(policy, leads)
    assert out.assignments == [(first,), (second,)] and out.reproduced == 2 and out.instant == 1
    assert out.counts == {reps[0].pk: 1, reps[2].pk: 1}  # bookings only: the instant lead is not re-decided
    # without it the second booking would have gone to Ben: the test can fail
    assert simulate(replace(policy, instant=()), leads).assignments[1] == (reps[1].pk,)

    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 2 and result["instant_assignments"] == 1


def test_instant_route_after_the_period_is_left_out(api, meeting_type, reps):
    create(meeting_type, at(3, 9), at(2, 9), 1)
    route_now(api, at(2, 10))
    policy, _leads = replay(meeting_type.pool, at(2, 0), at(2, 10))
    assert policy.instant == () and reps[1].pk not in policy.ledger_events


def test_instants_before_the_period_start_the_ledger_within_the_fairness_period(reps):
    """Weekly fairness; the period starts Wednesday 4 March. By hand, Ben got two leads last week (expired)
    and Ana one on Tuesday (counts): the first booking of the period goes to Ben (Ana 1, Ben 0)."""
    pool = make_pool("first_available", reps[:2], fairness_period="week")
    duo = make_meeting_type(pool, slug="duo")
    for moment, rep in ((at(1, 10), reps[1]), (at(1, 11), reps[1]), (at(3, 12), reps[0])):
        with time_machine.travel(moment, tick=False):
            ledger_assigned(pool_id=pool.pk, booking_id=None, rep_ids=[rep.pk], reason="routed by hand")
    host = create(duo, at(5, 9), at(4, 9), 1)
    assert host == reps[1].pk
    policy, leads = replay(pool, at(4, 0), at(9, 0))
    assert policy.ledger_events == {reps[1].pk: [at(1, 10), at(1, 11)], reps[0].pk: [at(3, 12)]}
    assert policy.last_assigned == {reps[1].pk: at(1, 11), reps[0].pk: at(3, 12)}
    assert policy.instant == ()
    out = simulate(policy, leads)
    assert out.assignments == [(host,)] and out.reproduced == 1
    # had Ben's entries not expired (Ben 2, Ana 1), or had Ana's not been read, Ana would have got it
    assert simulate(replace(policy, fairness_period="never"), leads).assignments == [(reps[0].pk,)]
    empty = replace(policy, ledger_events={}, last_assigned={})
    assert simulate(empty, leads).assignments == [(reps[0].pk,)]


def test_an_instant_lead_routed_by_hand_counts_for_its_new_rep_in_the_ledger_and_the_replay(
    api, meeting_type, reps
):
    """An instant route at 10:00 gives Ben a lead; at 10:30 an admin routes it by hand to Cy (a counting
    code): Ben loses the credit and Cy gets it (``leads.manual``), so the booking at 11:00 goes to Ben (Ana
    has one booking, Cy the lead). The ledger at the period's start and the replay of the period read it the
    same way, and the replay reproduces the booking; had Ben kept the lead, the booking would have gone to
    Ana (three reps at one each: the earliest last assignment)."""
    first = create(meeting_type, at(3, 9), at(2, 9), 1)
    assert route_now(api, at(2, 10)) == reps[1].pk
    lead_id = Lead.objects.get(booking__isnull=True).pk
    with time_machine.travel(at(2, 10, 30), tick=False):
        lead_route_by_hand(lead_id=lead_id, rep_id=reps[2].pk, code="rep_unavailable", note="on a call")
    pool, ids = meeting_type.pool, [r.pk for r in reps]
    ledger = pool_ledger(pool, ids, now=at(2, 10, 45))
    assert ledger.raw == {reps[0].pk: 1, reps[2].pk: 1}
    second = create(meeting_type, at(3, 10), at(2, 11), 2)
    assert (first, second) == (reps[0].pk, reps[1].pk)

    policy, leads = replay(pool, at(2, 0), at(9, 0))
    assert policy.instant == ((at(2, 10), reps[1].pk), (at(2, 10, 30), reps[2].pk))
    # Ben's counts until 10:30, when the routing by hand takes it back (he keeps it as his last assignment)
    assert policy.ledger_moves == (LedgerMove(at(2, 10, 30), reps[1].pk, at(2, 10), False, stamp=False),)
    out = simulate(policy, leads)
    assert out.assignments == [(first,), (second,)] and out.reproduced == 2
    kept = replace(policy, ledger_moves=())  # had Ben kept the lead: the test can fail
    assert simulate(kept, leads).assignments[1] == (reps[0].pk,)

    later, _leads = replay(pool, at(2, 10, 45), at(9, 0))  # the ledger as it stood before the booking
    assert {rid: len(events) for rid, events in later.ledger_events.items()} == ledger.raw
    assert later.last_assigned == ledger.last_assigned  # Ben keeps 10:00 as his last assignment


def test_replay_starting_ledger_keeps_an_instant_charge_taken_back_only_after_the_start(
    api, meeting_type, reps
):
    """An instant route on Monday 10:00 gives Ana a lead; on Wednesday an admin routes that lead by hand to
    Ben. The replay of the period from Tuesday 00:00 starts from the ledger as it stood then
    (docs/insights.md: "the starting ledger equals the live ledger"): Ana's charge counts in it, though its
    take-back entry is dated at the charge (Monday), since the credit moved only on Wednesday, where the
    replay takes it back. Failed before the fix: the starting ledger paired the charge with its backdated
    take-back and had no charge for Ana at all."""
    pool = meeting_type.pool
    ana = route_now(api, at(2, 10))
    live_at_start = pool_ledger(pool, [r.pk for r in reps], now=at(3, 0)).raw
    assert live_at_start == {ana: 1}
    lead = Lead.objects.get(booking__isnull=True)
    other = next(r.pk for r in reps if r.pk != ana)
    with time_machine.travel(at(4, 10), tick=False):
        lead_route_by_hand(lead_id=lead.pk, rep_id=other, code="rep_unavailable", note="on holiday")

    policy = current_policy(pool, start=at(3, 0), end=at(9, 0), replayed=[])
    assert {rid: len(events) for rid, events in policy.ledger_events.items()} == live_at_start
    assert policy.ledger_moves == (LedgerMove(at(4, 10), ana, at(2, 10), False, stamp=False),)
    assert policy.instant == ((at(4, 10), other),)  # the new rep's charge, made by the routing by hand
    # a replay ending before the routing by hand leaves the take-back out
    assert current_policy(pool, start=at(3, 0), end=at(4, 10), replayed=[]).ledger_moves == ()


def test_replay_reproduces_a_booking_made_while_an_instant_lead_was_not_yet_routed_by_hand(
    api, meeting_type, reps
):
    """Ana takes a booking at 09:00, an instant route at 10:00 gives Ben a lead, so the booking at 11:00 goes
    to Cy (Ana 1, Ben 1, Cy 0). At 12:00 an admin routes Ben's lead by hand to Ana. The replay of the day,
    under the policy that was live, reproduces both bookings (docs/insights.md: "reproduces the live hosts
    exactly"): Ben's charge counts from 10:00 until 12:00. Failed before the fix: the replay dropped Ben's
    charge entirely (paired with its take-back, dated at the charge), so at 11:00 Ben looked free of leads
    and got the second booking."""
    first = create(meeting_type, at(3, 9), at(2, 9), 1)
    ben = route_now(api, at(2, 10))
    second = create(meeting_type, at(3, 10), at(2, 11), 2)
    assert (first, ben, second) == (reps[0].pk, reps[1].pk, reps[2].pk)
    lead = Lead.objects.get(booking__isnull=True)
    with time_machine.travel(at(2, 12), tick=False):
        lead_route_by_hand(lead_id=lead.pk, rep_id=reps[0].pk, code="rep_unavailable", note="on a call")

    policy, leads = replay(meeting_type.pool, at(2, 0), at(9, 0))
    out = simulate(policy, leads)
    assert out.assignments == [(first,), (second,)] and out.reproduced == 2


def test_a_lead_routed_by_hand_twice_takes_each_charge_back_at_its_own_instant(api, meeting_type, reps):
    """An instant route at 10:00 gives a rep a lead; at 10:30 it is routed by hand to a second rep, at 12:00
    to a third: the first charge is taken back at 10:30, the second (the first routing by hand's) at 12:00.
    A replay from 11:00 starts from the live ledger at 11:00 (the second rep's charge counts) and takes it
    back at 12:00; a replay of the day takes each back at its instant."""
    first = route_now(api, at(2, 10))
    second, third = [r.pk for r in reps if r.pk != first]
    lead_id = Lead.objects.get(booking__isnull=True).pk
    pool, ids = meeting_type.pool, [r.pk for r in reps]
    with time_machine.travel(at(2, 10, 30), tick=False):
        lead_route_by_hand(lead_id=lead_id, rep_id=second, code="rep_unavailable", note="on a call")
    live = pool_ledger(pool, ids, now=at(2, 11)).raw  # the live ledger at 11:00
    assert live == {second: 1}
    with time_machine.travel(at(2, 12), tick=False):
        lead_route_by_hand(lead_id=lead_id, rep_id=third, code="rep_unavailable", note="on holiday")

    policy = current_policy(pool, start=at(2, 11), end=at(9, 0), replayed=[])
    assert {rid: len(events) for rid, events in policy.ledger_events.items()} == live
    assert policy.ledger_moves == (LedgerMove(at(2, 12), second, at(2, 10, 30), False, stamp=False),)
    assert policy.instant == ((at(2, 12), third),)
    whole = current_policy(pool, start=at(2, 0), end=at(9, 0), replayed=[])
    assert whole.instant == ((at(2, 10), first), (at(2, 10, 30), second), (at(2, 12), third))
    assert [(m.at, m.rep_id) for m in whole.ledger_moves] == [(at(2, 10, 30), first), (at(2, 12), second)]
