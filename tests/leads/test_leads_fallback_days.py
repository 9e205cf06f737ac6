"""Skill and owner routes' ``fallback_after_days`` check, with reps in zones with non-hour offsets
(Asia/Kathmandu +05:45, Pacific/Chatham +13:45 in March) and every strategy: a route is kept when it would
offer the lead a time within the days (docs/routing-rules.md), by the pool's own strategy."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from leads.models import Lead, RoutingRule
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_skilled_round_robin_route_falls_back_when_its_next_up_rep_is_away_within_the_days(api):
    """A round-robin pool of two reps with the skill ``enterprise`` 8: Aroha in Pacific/Chatham works
    Mondays only, Kiran in Asia/Kathmandu works every day 09:00-17:00 (03:15-11:15 UTC). Both have had no
    meeting; Aroha is next up by rank. The rule needs ``enterprise`` 5 and falls back to an overflow pool
    when the skilled route has no free slot within ``fallback_after_days`` (2 days).

    On Tuesday 3 March 2026 00:00 UTC Kiran is free at 03:15 UTC, but a pure round-robin pool offers only
    its next-up rep's times: keeping the route would show the prospect Aroha's Monday, six days away. So the
    check asks what the route would offer (docs/routing-rules.md), and the lead goes to the overflow pool."""
    aroha = make_rep("Aroha", tz="Pacific/Chatham", hours=(9, 17), days=[0])
    kiran = make_rep("Kiran", tz="Asia/Kathmandu", hours=(9, 17), days=range(7))
    for rep in (aroha, kiran):
        rep.skills.create(skill="enterprise", level=8)
    skilled = make_pool("round_robin", [aroha, kiran])
    overflow = make_pool("first_available", [make_rep("Dan", tz="Europe/London", hours=(9, 17))])
    meeting_type = make_meeting_type(skilled, slug="rr-skills")
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="Enterprise",
        pool=skilled,
        required_skills={"enterprise": 5},
        fallback_pool=overflow,
        fallback_after_days=2,
    )
    lead = {"email": "pat@acme.io", "name": "Pat", "timezone": "Asia/Kathmandu", "answers": {}, "utm": {}}
    with time_machine.travel(utc(2026, 3, 3, 0, 0), tick=False):
        routed = api.post("/api/v1/meeting-types/rr-skills/route", lead, format="json")
    assert routed.status_code == 200, routed.json()
    decision = Lead.objects.get().decision
    assert decision["skills"]["first_free"] is None, decision["skills"]
    assert decision["fallback"]["used"] is True, decision["fallback"]
    assert decision["route"]["pool"] == overflow.slug, decision["route"]


MONDAYS, EVERY_DAY = [0], range(7)
LEAD = {"email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin", "answers": {}, "utm": {}}


def _route(api, meeting_type, pool, *, fallback_after_days=2, **rule) -> dict:
    """Route ``LEAD`` with one rule on ``meeting_type`` (pool ``pool``, an overflow fallback pool) on Tuesday
    3 March 2026 00:00 UTC; the lead's decision record."""
    overflow = make_pool("first_available", [make_rep("Dan", tz="Europe/London", hours=(9, 17))])
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="Rule",
        pool=pool,
        fallback_pool=overflow,
        fallback_after_days=fallback_after_days,
        **rule,
    )
    with time_machine.travel(utc(2026, 3, 3, 0, 0), tick=False):
        routed = api.post(f"/api/v1/meeting-types/{meeting_type.slug}/route", LEAD, format="json")
    assert routed.status_code == 200, routed.json()
    return Lead.objects.get().decision


@pytest.mark.parametrize("strategy", ["round_robin", "weighted_round_robin", "ranked", "first_available"])
@pytest.mark.parametrize("second_days", [EVERY_DAY, MONDAYS], ids=["second_free", "second_away"])
def test_skilled_route_is_kept_iff_a_skilled_member_is_free_within_the_days(api, strategy, second_days):
    """Berlin reps: Top (skill 9, next up, first by proficiency, Mondays only), Second (skill 6, 11:00-17:00,
    i.e. from 10:00 UTC) and Loose (no skill, free every day from 08:00 UTC). Within 2 days of Tuesday 00:00
    UTC a ranked or first-available route is kept when Second is free (first free: Second's 10:00 UTC, the
    first time the route offers), and falls back when neither skilled member is, though unskilled Loose is
    free. A round-robin route falls back in both cases: it would offer only next-up Top's Monday."""
    from leads.models import PoolPerformance

    top = make_rep("Top", days=MONDAYS)
    second = make_rep("Second", hours=(11, 17), days=second_days)
    loose = make_rep("Loose", days=EVERY_DAY)
    top.skills.create(skill="enterprise", level=9)
    second.skills.create(skill="enterprise", level=6)
    pool = make_pool(strategy.removeprefix("weighted_"), [top, second, loose])
    if strategy == "weighted_round_robin":  # member weights, and performance factors on top
        pool.members.filter(rep=top).update(weight=5)
        PoolPerformance.objects.create(pool=pool)
    decision = _route(api, make_meeting_type(pool), pool, required_skills={"enterprise": 5})
    assert decision["skills"]["matching"] == sorted([top.pk, second.pk]), decision["skills"]
    if second_days == EVERY_DAY and "round_robin" not in strategy:
        assert decision["skills"]["first_free"] == "2026-03-03T10:00:00+00:00", decision["skills"]
        assert "fallback" not in decision, decision["fallback"]
        assert decision["route"]["pool"] == pool.slug, decision["route"]
    else:
        assert decision["skills"]["first_free"] is None, decision["skills"]
        assert decision["fallback"]["used"] is True, decision["fallback"]
        assert decision["route"]["pool"] != pool.slug, decision["route"]


@pytest.mark.parametrize("se_days", [EVERY_DAY, MONDAYS], ids=["se_free", "se_away"])
@pytest.mark.parametrize("group_order", ["next_up", "rank"])
def test_skilled_group_route_needs_one_free_member_of_every_role(api, se_days, group_order):
    """A group pool (AE + SE, Berlin): only the AE holds the skill, so the SE role stays open. The AE is free
    every day from 08:00 UTC; the SE from 10:00 UTC every day, or on Mondays only. A group meeting needs both
    at once: the route is kept with first free 10:00 UTC, or falls back when the SE is away, although the
    skilled AE alone is free (an "any candidate free" check must not apply to a group)."""
    ae = make_rep("Ann AE", days=EVERY_DAY)
    se = make_rep("Sid SE", hours=(11, 17), days=se_days)
    ae.skills.create(skill="enterprise", level=8)
    pool = make_pool("group", [ae, se], roles=["ae", "se"], group_order=group_order)
    decision = _route(api, make_meeting_type(pool), pool, required_skills={"enterprise": 5})
    if se_days == EVERY_DAY:
        assert decision["skills"]["first_free"] == "2026-03-03T10:00:00+00:00", decision["skills"]
        assert "fallback" not in decision, decision["fallback"]
    else:
        assert decision["skills"]["first_free"] is None, decision["skills"]
        assert decision["fallback"]["used"] is True, decision["fallback"]


@pytest.mark.parametrize("owner_days", [EVERY_DAY, MONDAYS], ids=["owner_free", "owner_away"])
def test_account_owner_in_a_round_robin_pool_is_used_iff_free_within_the_days(api, owner_days):
    """The account owner is not next up in a round-robin pool (Nina is, free every day): the owner is used
    when the owner is free within 2 days (11:00 Berlin, 10:00 UTC), else the lead falls back, though Nina is
    free."""
    from leads.models import Account

    nina = make_rep("Nina", days=EVERY_DAY)
    owner = make_rep("Olga", hours=(11, 17), days=owner_days)
    pool = make_pool("round_robin", [nina, owner])
    Account.objects.create(domain="acme.io", owner=owner)
    decision = _route(api, make_meeting_type(pool), pool, outcome="account_owner")
    if owner_days == EVERY_DAY:
        assert decision["owner"]["used"] is True, decision["owner"]
        assert decision["owner"]["first_free"] == "2026-03-03T10:00:00+00:00", decision["owner"]
        assert decision["route"]["candidates"] == [owner.pk], decision["route"]
    else:
        assert decision["owner"]["used"] is False, decision["owner"]
        assert decision["fallback"]["used"] is True, decision["fallback"]
