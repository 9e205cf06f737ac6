"""Read side of leads: a meeting type's rules and score model, skilled members, free-slot checks."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q

from booking.selectors import slots_in_window
from leads.models import RoutingRule, ScoreModel
from leads.rules_core import RuleSpec
from leads.tokens import Route
from routing.core import Interval
from routing.models import PoolMember, RepSkill


def rules_for(meeting_type) -> list[RoutingRule]:
    return list(
        RoutingRule.objects.filter(meeting_type=meeting_type, active=True)
        .select_related("pool", "fallback_pool")
        .order_by("order", "pk")
    )


def rule_specs(rules: list[RoutingRule]) -> list[RuleSpec]:
    return [RuleSpec(rule.pk, rule.name, rule.conditions) for rule in rules]


def score_points(meeting_type) -> list[dict]:
    model = ScoreModel.objects.filter(meeting_type=meeting_type).first()
    return model.points if model else []


def skilled_rep_ids(pool, skills: dict[str, int]) -> set[int]:
    """Active members of ``pool`` (active reps) holding every skill of ``skills`` at or above its level."""
    members = PoolMember.objects.filter(pool=pool, active=True, rep__active=True)
    for skill, level in skills.items():
        members = members.filter(Q(rep__skills__skill=skill, rep__skills__level__gte=level))
    return set(members.values_list("rep_id", flat=True))


def proficiency_ranks(pool, rep_ids: set[int], skills: dict[str, int]) -> dict[int, int]:
    """Ranks 0, 1, … for ``rep_ids`` by their summed level in ``skills`` (highest first; ties: pool rank)."""
    levels = dict.fromkeys(rep_ids, 0)
    for rep_id, level in RepSkill.objects.filter(rep_id__in=rep_ids, skill__in=list(skills)).values_list(
        "rep_id", "level"
    ):
        levels[rep_id] += level
    base = dict(PoolMember.objects.filter(pool=pool, rep_id__in=rep_ids).values_list("rep_id", "rank"))
    order = sorted(rep_ids, key=lambda r: (-levels[r], base.get(r, 0), r))
    return {rep_id: i for i, rep_id in enumerate(order)}


def member_rep_ids(pool) -> set[int]:
    return set(PoolMember.objects.filter(pool=pool, active=True).values_list("rep_id", flat=True))


def with_other_roles(pool, rep_ids: set[int]) -> frozenset[int]:
    """The candidates of a route that picks ``rep_ids`` (an account owner, the skilled members). In a
    ``group`` pool a meeting needs one member of every role: the pick applies to the roles it names, and
    the members of the other roles stay candidates (the owner is the AE; any free SE joins). Restricting
    the group to the owner alone left no SE, so the owner never had a free slot."""
    if pool.strategy != "group" or not rep_ids:  # nobody picked: nobody (not every role open)
        return frozenset(rep_ids)
    roles = dict(PoolMember.objects.filter(pool=pool, active=True).values_list("rep_id", "role"))
    picked = {roles[r] for r in rep_ids if r in roles}
    return frozenset(rep_ids) | {r for r, role in roles.items() if role not in picked}


def first_free_slot(meeting_type, route: Route, *, now: datetime, days: int) -> datetime | None:
    """The first start ``route`` offers within ``days`` days from ``now`` (None: nothing free)."""
    window = Interval(now, now + timedelta(days=days))
    starts = slots_in_window(meeting_type, window, now=now, route=route)
    return starts[0] if starts else None


def performance_factors(pool, *, now: datetime) -> dict | None:
    """``{"factors": {rep_id: f}, "outcomes": {rep_id: [n, s]}, …}`` for a pool with performance weighting
    enabled (outcomes of the members' bookings recorded in the trailing window), else None."""
    from booking.models import BookingOutcome
    from leads.models import PoolPerformance
    from leads.performance_core import Record, factors

    settings = PoolPerformance.objects.filter(pool=pool, enabled=True).first()
    if settings is None:
        return None
    members = dict(PoolMember.objects.filter(pool=pool, active=True).values_list("rep_id", "weight"))
    since = now - timedelta(days=settings.window_days)
    counts = {rep_id: [0, 0] for rep_id in members}
    successes = Q(kind__in=[BookingOutcome.Kind.QUALIFIED, BookingOutcome.Kind.WON])
    rows = (  # one row per member (an outcome counts once per active host row of its booking)
        BookingOutcome.objects.filter(
            recorded_at__gte=since, booking__hosts__active=True, booking__hosts__rep_id__in=list(members)
        )
        .values("booking__hosts__rep_id")
        .order_by()
        .annotate(n=Count("pk"), s=Count("pk", filter=successes))
        .values_list("booking__hosts__rep_id", "n", "s")
    )
    for rep_id, n, s in rows:
        counts[rep_id] = [n, s]
    records = {rep_id: Record(members[rep_id], *counts[rep_id]) for rep_id in members}
    result = factors(records, strength=settings.strength, floor=settings.floor, prior=settings.prior_outcomes)
    return {
        "factors": {str(k): round(v, 4) for k, v in result.items()},
        "outcomes": {str(k): v for k, v in counts.items()},
        "strength": settings.strength,
        "floor": settings.floor,
        "window_days": settings.window_days,
    }
