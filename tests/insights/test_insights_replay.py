"""Replay with the routing rules' recorded decisions (owner matches, fallbacks) and with recorded
cancellations (a cancelled booking frees its slot at its cancellation; fairness per the pool's setting)."""

from __future__ import annotations

import pytest

from booking.models import Booking, BookingHost
from booking.services import booking_cancel, booking_create
from insights.selectors import current_policy, replay_bookings, replay_leads
from insights.services import Synthetic, simulation_run
from insights.simulator import Lead, simulate
from leads.models import Account, RoutingRule
from leads.services import lead_route
from leads.tokens import route_resolve
from routing.models import Pool, PoolMember
from routing.selectors import meeting_spec
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db


def create(meeting_type, start, now, n, email=None, route=None):
    result = booking_create(
        meeting_type=meeting_type,
        start=start,
        name=f"P{n}",
        email=email or f"p{n}@example.org",
        timezone="Europe/Berlin",
        now=now,
        route=route,
    )
    return Booking.objects.get(pk=result.body["id"])


def book_and_cancel(meeting_type, start, now, n, cancelled_at):
    result = booking_create(
        meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    booking_cancel(token=result.body["manage_url"].rsplit("/", 1)[-1], now=cancelled_at)
    return Booking.objects.get(pk=result.body["id"])


def routed(meeting_type, email, now):
    result = lead_route(
        meeting_type=meeting_type,
        email=email,
        name="P",
        timezone="Europe/Berlin",
        answers={},
        utm={},
        now=now,
    )
    return route_resolve(result.token, meeting_type=meeting_type)


def candidate_without(pool, reps, left_out):
    members = "\n".join(f"      - {{rep: {r.email}}}" for r in reps if r != left_out)
    head = f"version: 1\npools:\n  - slug: {pool.slug}\n    name: C\n    strategy: first_available\n"
    return f"{head}    members:\n{members}\n"


@pytest.fixture
def owner_period(meeting_type, reps, monkeypatch):
    """Three bookings: (1) pat@acme.io, whose account Ben owns, routed to Ben by the owner rule; (2) an
    unknown company: the rule falls back to the pool (recorded ``fallback.used``); (3) no rule involved
    (another meeting type), the first choice reported busy live (``live_busy``)."""
    RoutingRule.objects.create(
        meeting_type=meeting_type, order=1, name="Owner", outcome="account_owner", fallback_after_days=5
    )
    Account.objects.create(domain="acme.io", owner=reps[1])
    owned = create(
        meeting_type, at(3, 9), at(2, 9), 1, "pat@acme.io", routed(meeting_type, "pat@acme.io", at(2, 9))
    )
    other = create(
        meeting_type,
        at(3, 10),
        at(2, 10),
        2,
        "kim@other.org",
        routed(meeting_type, "kim@other.org", at(2, 10)),
    )
    calls = []

    def first_busy(rep_ids, *args, **kwargs):
        calls.append(rep_ids)
        return {rep_ids[0]} if len(calls) == 1 else set()

    monkeypatch.setattr("booking.services.routing.hosts_busy_live", first_busy)
    plain = make_meeting_type(meeting_type.pool, slug="plain")
    busy = create(plain, at(3, 11), at(2, 11), 3)
    assert busy.decision["live_busy"] and busy.hosts.get().rep_id not in busy.decision["live_busy"]
    return owned, other, busy


def test_owner_and_fallbacks_from_recorded_rules(meeting_type, reps, owner_period):
    owned, other, _busy = owner_period
    assert owned.hosts.get().rep_id == reps[1].pk  # live: the owner
    pool = meeting_type.pool
    result = simulation_run(
        pool=pool, start=at(2, 0), end=at(9, 0), candidate_text=candidate_without(pool, reps, reps[1])
    )
    current, candidate = result["results"]
    assert result["leads"] == 3 and current["reproduced"] == 3
    # current: the owned lead goes to Ben (1 of 1); fallbacks: the rule's (kim) + the live-busy first choice
    assert current["owner_leads"] == 1 and current["owner_matches"] == 1
    assert current["fallbacks"] == 2
    # without Ben the owner route cannot be honoured: a fallback, no owner match; the live-busy lead is not
    # one here (live, Cy was busy; this policy's first choice for it is Ana): kim's rule + the owner route
    busy_rep = owner_period[2].decision["live_busy"]
    assert busy_rep == [reps[2].pk]
    assert candidate["owner_leads"] == 1 and candidate["owner_matches"] == 0
    assert candidate["fallbacks"] == 2
    assert reps[1].pk not in {r["rep_id"] for r in candidate["reps"] if r["count"]}


def test_recorded_route_restricts_the_replay(meeting_type, reps, owner_period):
    leads = replay_leads(replay_bookings(meeting_type.pool, start=at(2, 0), end=at(9, 0)))
    owned = leads[0]
    assert owned.owner == reps[1].pk and owned.route.rep_ids == frozenset({reps[1].pk})
    assert not owned.rules_fallback and leads[1].rules_fallback and leads[1].owner is None
    assert leads[2].route is None and leads[2].live_busy


def test_synthetic_has_no_owner_data(meeting_type):
    result = simulation_run(pool=meeting_type.pool, start=at(2, 7), synthetic=Synthetic(2, 6, seed=3))
    assert result["results"][0]["owner_matches"] is None and result["results"][0]["fallbacks"] == 0


@pytest.fixture
def solo(reps):
    pool = make_pool("first_available", [reps[0]], fairness_period="week")
    return make_meeting_type(pool, slug="solo")


def test_cancelled_booking_frees_its_slot_at_its_cancellation(solo, reps):
    first = book_and_cancel(solo, at(3, 9), at(2, 9), 1, cancelled_at=at(2, 10))
    again = create(solo, at(3, 9), at(2, 11), 2)  # live: the freed 09:00 went to Ana again
    assert first.status == "cancelled" and again.hosts.get().rep_id == reps[0].pk
    result = simulation_run(pool=solo.pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["cancellations"] == 1
    assert result["reproduced"] == 2 and result["moved"] == 0 and result["no_slot"] == 0


def test_cancellation_after_the_period_is_not_replayed(solo):
    book_and_cancel(solo, at(3, 9), at(2, 9), 1, cancelled_at=at(2, 10))
    leads = replay_leads(replay_bookings(solo.pool, start=at(2, 0), end=at(2, 10)), end=at(2, 10))
    assert leads[0].cancelled_at is None
    leads = replay_leads(replay_bookings(solo.pool, start=at(2, 0), end=at(2, 11)), end=at(2, 11))
    assert leads[0].cancelled_at == at(2, 10)


@pytest.mark.parametrize("counts", [True, False])
def test_cancellations_count_per_pool_setting(meeting_type, reps, counts):
    """Ben and Cy start at 0.5 (adjustment): the first lead goes to Ana and is cancelled. The next goes to Ana
    again if her cancelled booking no longer counts (0 < 0.5), else to Ben (1 > 0.5)."""
    Pool.objects.filter(pk=meeting_type.pool_id).update(count_cancellations=counts)
    PoolMember.objects.filter(pool_id=meeting_type.pool_id, rep__in=reps[1:]).update(adjustment=0.5)
    meeting_type.pool.refresh_from_db()
    first = book_and_cancel(meeting_type, at(3, 9), at(2, 9), 1, cancelled_at=at(2, 10))
    assert first.hosts.get().rep_id == reps[0].pk
    second = create(meeting_type, at(3, 10), at(2, 11), 2)
    assert second.hosts.get().rep_id == (reps[1] if counts else reps[0]).pk
    create(meeting_type, at(3, 11), at(2, 12), 3)
    pool = Pool.objects.get(pk=meeting_type.pool_id)
    bookings = replay_bookings(pool, start=at(2, 0), end=at(9, 0))
    policy = current_policy(pool, start=at(2, 0), end=at(9, 0), replayed=bookings)
    assert policy.count_cancellations is counts
    out = simulate(policy, replay_leads(bookings, end=at(9, 0)))
    assert out.cancellations == 1 and out.reproduced == 3
    assert out.assignments[1] == (second.hosts.get().rep_id,)


def test_booking_decided_before_the_period_blocks_until_its_cancellation(solo, reps):
    book_and_cancel(solo, at(3, 9), at(1, 9), 1, cancelled_at=at(2, 12))
    pool = solo.pool
    policy = current_policy(pool, start=at(2, 0), end=at(9, 0), replayed=[])
    assert [p.rep_id for p in policy.prior_cancelled] == [reps[0].pk]
    spec = meeting_spec(solo)
    # 11:00: 09:00 is still taken (moved to the next free start); 13:00: freed, the request is met as asked
    leads = [
        Lead(at=at(2, 11), meeting=spec, start=at(3, 9)),
        Lead(at=at(2, 13), meeting=spec, start=at(3, 9)),
    ]
    out = simulate(policy, leads)
    assert out.moved == 1 and out.cancellations == 1 and out.no_slot == 0
    assert out.assignments == [(reps[0].pk,), (reps[0].pk,)]
    assert BookingHost.objects.get(booking__meeting_type=solo).released == "cancelled"  # nothing written
