"""Replay of what happened to bookings outside the replayed stream, as live routing saw it: bookings decided
before the period (their credit at its start, their reschedules, reassignments, no-shows and cancellations
in it; another pool's booking in a shared rep's calendar), no-shows of replayed bookings, members who joined
the pool during the period, and a routed pool's bookings of another pool's meeting type. Each test failed
before its fix (the replay disagreed with live routing)."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.services import booking_cancel, booking_reassign, booking_reschedule
from booking.services.outcomes import booking_outcome_record
from calendars.models import BusyInterval
from insights.selectors import current_policy
from insights.services import simulation_run
from routing.ledger import pool_ledger
from routing.models import PoolMember
from routing.overrides import OverrideCode
from routing.services import pool_member_join
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.insights.conftest import at, create, hosts_of

pytestmark = pytest.mark.django_db


def test_replay_blocks_a_rep_with_another_pools_booking_cancelled_after_the_period():
    """Ana is in two pools. A booking of the other pool (made before the replayed week, cancelled after it)
    held her on Tuesday 10 March 09:00, so live routing gave that week's lead for 09:00 to Ben. The calendars
    loaded now no longer hold the cancelled booking: the replay must put it back whatever pool it was in
    (before, only the replayed pool's own were), and reproduce 1 of 1."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben], fairness_period="week")
    other = make_pool("first_available", [ana], fairness_period="week")
    meeting_type = make_meeting_type(pool, slug="shared")
    other_type = make_meeting_type(other, slug="other")
    _o, other_token = create(other_type, at(10, 9), at(1, 9), 0)  # Sunday: before the replayed period
    lead, _ = create(meeting_type, at(10, 9), at(2, 9), 1)
    assert hosts_of(lead) == {ben.pk}  # live: Ana held by the other pool's booking
    booking_cancel(token=other_token, now=at(6, 12))  # after the period, before the meeting
    result = simulation_run(pool=pool, start=at(2, 0), end=at(5, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]
    assert result["cancellations"] == 0  # another pool's: not one of this pool's cancellations


def test_replay_credits_a_no_show_back_when_it_was_recorded_as_live_did():
    """The pool does not count no-shows (the default). Ben's Monday 10:00 meeting is recorded as a no-show at
    11:00; the fairness ledger credits it back, so live routing gives the 12:00 lead to Ben (count 0 against
    Ana's and Cy's 1). The replay must take the no-show out of the ledger at the instant it was recorded
    (before, it kept counting Ben's meeting and gave the lead to Ana) and reproduce 4 of 4."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben, cy], fairness_period="week")
    meeting_type = make_meeting_type(pool, slug="no-show")
    b1, _ = create(meeting_type, at(3, 9), at(2, 7), 1)
    b2, _ = create(meeting_type, at(2, 10), at(2, 7, 5), 2)
    b3, _ = create(meeting_type, at(3, 9), at(2, 7, 10), 3)
    assert [hosts_of(b) for b in (b1, b2, b3)] == [{ana.pk}, {ben.pk}, {cy.pk}]
    booking_outcome_record(booking=b2, kind="no_show", now=at(2, 11))
    b4, _ = create(meeting_type, at(3, 10), at(2, 12), 4)
    assert hosts_of(b4) == {ben.pk}  # live: Ben's no-show was credited back
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 4, result["reps"]


def test_replay_does_not_offer_a_lead_to_a_member_who_joined_the_pool_later():
    """Cy was added to the pool on Monday 9 March (``PoolMember.joined_at``, joined at the mean load through
    ``pool_member_join``). Replayed over 2–16 March, the lead of Monday 2 March must go to Ana, as live
    routing gave it (Cy was not a member then): a member is a candidate only from its ``joined_at`` on.
    Before, Cy (rank 0, never assigned) took it (0 of 1 "same hosts as live")."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben], fairness_period="week")
    PoolMember.objects.filter(pool=pool, rep=ana).update(rank=1)
    PoolMember.objects.filter(pool=pool, rep=ben).update(rank=2)
    meeting_type = make_meeting_type(pool, slug="join")
    lead, _ = create(meeting_type, at(3, 9), at(2, 7), 1)
    assert hosts_of(lead) == {ana.pk}
    member = PoolMember.objects.create(pool=pool, rep=cy, rank=0)
    PoolMember.objects.filter(pk=member.pk).update(joined_at=at(9, 6))
    pool_member_join(member, now=at(9, 6))  # a new week: the mean load, and Cy's head start, is 0
    result = simulation_run(pool=pool, start=at(2, 0), end=at(16, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]
    # a lead after Cy joined is Cy's (rank 0, the mean load): the replay does not keep Cy out for good
    later, _ = create(meeting_type, at(10, 9), at(9, 7), 2)
    assert hosts_of(later) == {cy.pk}
    result = simulation_run(pool=pool, start=at(2, 0), end=at(16, 0))["results"][0]
    assert result["reproduced"] == 2, result["reps"]


def test_replay_of_a_routed_pool_loads_calendars_over_the_routed_meeting_types_horizon():
    """A routing rule sends every lead of a 90-day-horizon meeting type to the "enterprise" pool, which has
    no meeting type of its own. A prospect books 21 April 09:00, when Ana's synced calendar is busy: live
    routing gives it to Ben. The replay must load the calendars over the replayed bookings' meeting types'
    horizon (before: the pool's own types only, none: 30 days, so Ana's busy time was not loaded and she got
    the lead), and reproduce 1 of 1."""
    from leads.models import RoutingRule
    from leads.services import lead_route
    from leads.tokens import route_resolve

    ana, ben = make_rep("Ana"), make_rep("Ben")
    home = make_pool("first_available", [ana, ben], fairness_period="week")
    enterprise = make_pool("first_available", [ana, ben], fairness_period="week")
    meeting_type = make_meeting_type(home, slug="far", horizon_days=90)
    RoutingRule.objects.create(meeting_type=meeting_type, order=1, name="All to enterprise", pool=enterprise)
    far = dt.datetime(2026, 4, 21, 9, 0, tzinfo=dt.UTC)
    BusyInterval.objects.create(rep=ana, start=far, end=far + dt.timedelta(hours=1), source="calendar")
    lead = lead_route(
        meeting_type=meeting_type, email="pat@acme.io", name="Pat", timezone="Europe/Berlin", answers={},
        utm={}, now=at(2, 8),
    )  # fmt: skip
    route = route_resolve(lead.token, meeting_type=meeting_type)
    booking, _ = create(meeting_type, far, at(2, 9), 1, route=route)
    assert booking.pool_id == enterprise.pk and hosts_of(booking) == {ben.pk}
    result = simulation_run(pool=enterprise, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]


def test_replay_keeps_the_credit_of_a_booking_decided_before_the_period_and_rerouted_in_it():
    """Monthly fairness. Ana got a booking on 1 March (before the replayed period); live, the lead of 2 March
    went to Ben (Ana 1, Ben 0). On 4 March that earlier booking was rescheduled to a time Ana is busy and
    routed again to Ben. The booking must count for Ana from the start of the period until the reschedule
    moves it to Ben, as the live ledger counted it, and the replay reproduce 1 of 1. Before, the starting
    ledger dropped Ana's row (released as reassigned today) and Ben's (assigned after the start), so the
    booking counted for nobody and Ana got the lead."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, slug="rerouted")
    prior, token = create(meeting_type, at(10, 9), at(1, 9), 0)
    assert hosts_of(prior) == {ana.pk}
    lead, _ = create(meeting_type, at(3, 9), at(2, 9), 1)
    assert hosts_of(lead) == {ben.pk}  # live: Ana had one booking this month
    BusyInterval.objects.create(rep=ana, start=at(10, 11), end=at(10, 12), source="calendar")
    booking_reschedule(token=token, start=at(10, 11), now=at(4, 9))
    assert hosts_of(prior) == {ben.pk}
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]


def test_a_booking_decided_before_the_period_is_not_replayed_as_one_of_its_leads():
    """A booking made on 1 March (Ana) is rescheduled on 3 March (routed again: Ben) and on 4 March (routed
    again: Ana, whose old host row is made active again with ``assigned_at`` = 4 March). Replaying 2–9
    March, the booking is no lead of the period: its decision instant is when it was made
    (``Booking.created_at``). Before, the earliest ``assigned_at`` of its host rows (3 March, Ben's released
    row) was taken for it, and the booking was replayed, at the wrong instant."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, slug="flip")
    booking, token = create(meeting_type, at(10, 9), at(1, 9), 0)
    assert hosts_of(booking) == {ana.pk} and booking.created_at == at(1, 9)
    BusyInterval.objects.create(rep=ana, start=at(10, 11), end=at(10, 12), source="calendar")
    booking_reschedule(token=token, start=at(10, 11), now=at(3, 9))
    assert hosts_of(booking) == {ben.pk}
    BusyInterval.objects.create(rep=ben, start=at(10, 13), end=at(10, 14), source="calendar")
    booking_reschedule(token=token, start=at(10, 13), now=at(4, 9))
    assert hosts_of(booking) == {ana.pk}
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))
    assert result["leads"] == 0, result
    assert simulation_run(pool=pool, start=at(1, 0), end=at(9, 0))["leads"] == 1


def test_the_replays_starting_ledger_is_the_live_ledger_at_each_instant():
    """Three bookings decided on 1 March, then changed: a no-show (2 March), a reschedule routed again to
    another rep (3 March), a non-counting override (4 March), the no-show corrected (5 March) and a
    cancellation (6 March). The ledger a replay starts from (counts and last assignments), rebuilt from the
    bookings' histories, is the live ledger as it stood at each of those instants."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben, cy], fairness_period="month")
    meeting_type = make_meeting_type(pool, slug="history")
    ids = [ana.pk, ben.pk, cy.pk]
    snapshots = []

    def snapshot(moment):
        ledger = pool_ledger(pool, ids, now=moment)
        snapshots.append((moment, {r: n for r, n in ledger.raw.items() if n}, ledger.last_assigned))

    moved, token = create(meeting_type, at(10, 9), at(1, 9), 1)
    missed, _ = create(meeting_type, at(2, 9), at(1, 10), 2)
    kept, _ = create(meeting_type, at(12, 9), at(1, 11), 3)
    assert [hosts_of(b) for b in (moved, missed, kept)] == [{ana.pk}, {ben.pk}, {cy.pk}]
    snapshot(at(2, 0))
    booking_outcome_record(booking=missed, kind="no_show", now=at(2, 12))
    snapshot(at(2, 13))
    BusyInterval.objects.create(rep=ana, start=at(10, 11), end=at(10, 12), source="calendar")
    booking_reschedule(token=token, start=at(10, 11), now=at(3, 9))
    assert hosts_of(moved) == {ben.pk}
    snapshot(at(3, 10))
    to_ana = PoolMember.objects.get(pool=pool, rep=ana).pk
    booking_reassign(booking_id=kept.pk, to_member_id=to_ana, code=OverrideCode.ACCOUNT_OWNER, now=at(4, 9))
    snapshot(at(4, 10))
    booking_outcome_record(booking=missed, kind="held", now=at(5, 9))
    snapshot(at(5, 10))
    booking_cancel(token=token, now=at(6, 9))
    snapshot(at(6, 10))
    assert len({str(counts) for _, counts, _ in snapshots}) >= 4  # the ledger did change in between
    for moment, counts, last in snapshots:
        policy = current_policy(pool, start=moment, end=moment + dt.timedelta(days=1), replayed=[])
        events = {r: len(e) for r, e in policy.ledger_events.items() if e}
        assert (events, policy.last_assigned) == (counts, last), moment
