"""The replay agrees with what live routing did for the same recorded input: a routed booking rescheduled
is routed again within its route, a group reschedule keeps the free hosts' seats, a booking decided before
the period and cancelled after it holds its host through the period; the dashboard's funnel follows the
prospect from the pool's pages to the booking, and its period is UTC whatever the server's zone. Each test
failed before the fix its docstring names."""

from __future__ import annotations

import pytest

from booking.services import booking_cancel, booking_reschedule
from calendars.models import BusyInterval
from insights.services import simulation_run
from leads.tokens import Route
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.insights.conftest import at, create, hosts_of

pytestmark = pytest.mark.django_db


def test_replay_reroutes_a_routed_booking_within_its_route_as_live_does(meeting_type, reps):
    """Live: booking 2 (route Ana+Ben) moves to a time Ana is busy → Ben. The replay routed the move in the
    whole pool (``sim_steps.reschedule`` ignored ``lead.route``) → Cy, the least loaded."""
    ana, ben, cy = reps
    pool = meeting_type.pool
    BusyInterval.objects.create(rep=ana, start=at(3, 11), end=at(3, 11, 30))
    one, _ = create(meeting_type, at(3, 9), at(2, 8), 1, route=Route(pool=pool, rep_ids=frozenset({ben.pk})))
    two, token = create(
        meeting_type, at(3, 9), at(2, 9), 2, route=Route(pool=pool, rep_ids=frozenset({ana.pk, ben.pk}))
    )
    assert hosts_of(one) == {ben.pk} and hosts_of(two) == {ana.pk}
    booking_reschedule(token=token, start=at(3, 11), now=at(2, 10))
    two.refresh_from_db()
    assert hosts_of(two) == {ben.pk}  # live: within the route, Ana busy → Ben (not Cy)
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 2, result["reps"]


def test_replay_of_a_group_reschedule_keeps_the_free_hosts_seat_as_live_does():
    """Live: the SE is busy at the new time → the AE stays, only the SE seat is routed. The replay re-routed
    every seat → the AE seat went to the other AE."""
    ann, abe, sol, sue = make_rep("Ann AE"), make_rep("Abe AE"), make_rep("Sol SE"), make_rep("Sue SE")
    pool = make_pool("group", [ann, abe, sol, sue], roles=["ae", "ae", "se", "se"], fairness_period="week")
    meeting_type = make_meeting_type(pool, slug="group-hunt")
    booking, token = create(meeting_type, at(3, 9), at(2, 9), 1)
    first = hosts_of(booking)
    assert first == {ann.pk, sol.pk}
    BusyInterval.objects.create(rep=sol, start=at(3, 11), end=at(3, 11, 30))
    booking_reschedule(token=token, start=at(3, 11), now=at(2, 10))
    assert hosts_of(booking) == {ann.pk, sue.pk}  # live: Ann keeps the AE seat
    result = simulation_run(pool=pool, start=at(2, 0), end=at(9, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]


def test_replay_keeps_a_booking_decided_before_the_period_and_cancelled_after_it():
    """Live, it blocked its host's time (and counted) through the period. The replay loads today's calendars,
    in which it is gone, and put back only cancellations inside the period: the replayed lead got the host
    live routing could not give it."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("ranked", [ana, ben], fairness_period="week")
    meeting_type = make_meeting_type(pool, slug="ranked-hunt")
    _prior, prior_token = create(meeting_type, at(10, 9), at(1, 9), 1)  # Sunday: before the period
    later, _ = create(meeting_type, at(10, 9), at(2, 9), 2)
    assert hosts_of(later) == {ben.pk}  # live: Ana (rank 0) was taken at 09:00
    booking_cancel(token=prior_token, now=at(6, 12))  # after the replayed period, before the meeting
    result = simulation_run(pool=pool, start=at(2, 0), end=at(5, 0))["results"][0]
    assert result["reproduced"] == 1, result["reps"]


def test_funnel_counts_a_routed_booking_in_the_same_pool_as_its_visit_and_lead(meeting_type, reps):
    """A routing rule sends the lead to another pool: the visit and the qualified lead are the meeting type's
    pool's, and the booking was counted in the route's pool, so neither funnel held the journey (a visitor
    and a qualified lead who never booked; a booking with no visit)."""
    from booking.signals import booking_page_viewed
    from insights import kpis
    from insights.models import PageVisit, RoutedLead
    from leads.models import RoutingRule
    from leads.services import lead_route
    from leads.tokens import route_resolve

    enterprise = make_pool("first_available", [reps[0]], fairness_period="week")
    RoutingRule.objects.create(meeting_type=meeting_type, order=1, name="All to enterprise", pool=enterprise)
    booking_page_viewed.send(sender=None, meeting_type=meeting_type, visitor="v1", utm={}, request=None)
    lead = lead_route(
        meeting_type=meeting_type, email="pat@acme.io", name="Pat", timezone="Europe/Berlin", answers={},
        utm={}, now=at(2, 8),
    )  # fmt: skip
    booking, _ = create(
        meeting_type, at(3, 9), at(2, 9), 1, route=route_resolve(lead.token, meeting_type=meeting_type)
    )
    PageVisit.objects.update(at=at(2, 8))
    RoutedLead.objects.update(at=at(2, 8))
    assert booking.created_at == at(2, 9) and booking.pool_id == enterprise.pk
    home = kpis.funnel(meeting_type.pool, at(1, 0), at(8, 0))
    routed = kpis.funnel(enterprise, at(1, 0), at(8, 0))
    assert (home["visits"], home["qualified"], home["booked"]) == (1, 1, 1), (home, routed)
    assert (routed["visits"], routed["booked"]) == (0, 0), (home, routed)


def test_dashboard_period_is_utc_whatever_the_servers_time_zone(settings, meeting_type):
    """``TIME_ZONE`` is an environment setting; set to New York, the form read "2026-03-02 00:00" as 05:00
    UTC, and the dashboard's period (and every figure in it) was shifted."""
    from insights.forms import DashboardForm

    settings.TIME_ZONE = "America/New_York"
    form = DashboardForm(
        {"pool": meeting_type.pool.slug, "start": "2026-03-02 00:00", "end": "2026-03-09 00:00"}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start"] == at(2, 0)
