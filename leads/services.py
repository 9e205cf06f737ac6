"""Routing a lead: score it, run the meeting type's rules (first match wins), resolve the outcome, store it.

``lead_route`` is the write path behind ``POST /api/v1/meeting-types/<slug>/route``; ``lead_evaluate`` is
the same decision without writing anything (the admin's rule tester). ``leads_delete`` erases leads (the
admin's delete button and action).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import transaction
from django.utils import timezone as dj_timezone

from booking.errors import BookingError
from booking.models import OutboxMessage
from booking.signals import lead_routed
from leads import selectors
from leads.geo import country_code, country_for_timezone
from leads.models import Lead, RoutingRule
from leads.outbox import lead_emit, lead_messages
from leads.owners import owner_lookup
from leads.rules_core import LeadFacts, first_match, is_free_mail, lead_score
from leads.tokens import Route, route_sign


@dataclass
class Decision:
    facts: LeadFacts
    rule: RoutingRule | None
    route: Route | None  # None: disqualified
    message: str = ""
    record: dict = field(default_factory=dict)

    @property
    def disqualified(self) -> bool:
        return self.route is None


def lead_facts(*, email: str, timezone: str, answers: dict, utm: dict, country: str = "") -> LeadFacts:
    """Facts before scoring; the country is given (two letters, checked by the API; "UK" is GB), else a
    ``country`` answer when it names a country (``geo.country_code``), else the time zone's."""
    given = country_code(country) or country.upper()  # an integrator's code (XK) stands; "UK" is GB
    country = given or country_code(str(answers.get("country") or "")) or country_for_timezone(timezone)
    return LeadFacts(email=email, timezone=timezone, country=country, answers=answers, utm=utm)


def _route_skills(meeting_type, rule: RoutingRule, pool, *, now: datetime, record: dict) -> Route:
    skills = rule.required_skills or {}
    if not skills:
        return Route(pool=pool)
    skilled = selectors.skilled_rep_ids(pool, skills)
    ranks = selectors.proficiency_ranks(pool, skilled, skills) if pool.strategy == "ranked" else {}
    route = Route(pool=pool, rep_ids=selectors.with_other_roles(pool, skilled), skills=skills, ranks=ranks)
    first = (
        selectors.first_free_slot(meeting_type, route, now=now, days=rule.fallback_after_days)
        if skilled
        else None
    )
    info = {"required": skills, "matching": sorted(skilled), "within_days": rule.fallback_after_days}
    info["first_free"] = first.isoformat() if first else None
    record["skills"] = info
    if first is not None:
        return route
    if rule.fallback_pool is None:
        record["fallback"] = {"used": False, "reason": "no skilled member free in time; no fallback pool set"}
        return route
    record["fallback"] = {
        "used": True,
        "pool": rule.fallback_pool.slug,
        "reason": f"no member with {skills} has a free slot within {rule.fallback_after_days} days",
    }
    return Route(pool=rule.fallback_pool)


def _route_owner(meeting_type, rule: RoutingRule, pool, facts: LeadFacts, *, now: datetime, record: dict):
    match, why = owner_lookup(email=facts.email.lower(), domain=facts.domain)
    info: dict = {"free_mail": is_free_mail(facts.domain), "within_days": rule.fallback_after_days}
    record["owner"] = info
    if match is not None:
        info.update(rep_id=match.rep_id, source=match.source, detail=match.detail)
        if match.rep_id not in selectors.member_rep_ids(pool):
            info["used"], info["reason"] = False, f"owner is not an active member of pool {pool.slug}"
        else:
            route = Route(pool=pool, rep_ids=selectors.with_other_roles(pool, {match.rep_id}))
            first = selectors.first_free_slot(meeting_type, route, now=now, days=rule.fallback_after_days)
            if first is not None:
                info.update(used=True, first_free=first.isoformat())
                return route
            info["used"], info["reason"] = (
                False,
                f"owner has no free slot within {rule.fallback_after_days} days",
            )
    else:  # none, or the lookup failed (a CRM timeout): normal routing
        info.update(used=False, reason=why)
    fallback = rule.fallback_pool or meeting_type.pool
    record["fallback"] = {"used": True, "pool": fallback.slug, "reason": info["reason"]}
    return Route(pool=fallback)


def lead_match(
    *, meeting_type, email: str, timezone: str, answers: dict, utm: dict, country: str = ""
) -> tuple[LeadFacts, RoutingRule | None, dict]:
    """Score the lead and find its rule (first match wins) — what every routing mode (booking page, instant
    route) shares. Returns the facts with the score, the rule (None: no match) and the record so far."""
    facts = lead_facts(email=email, timezone=timezone, answers=answers, utm=utm, country=country)
    score, hits = lead_score(selectors.score_points(meeting_type), facts)
    facts = LeadFacts(**{**facts.__dict__, "score": score})
    rules = selectors.rules_for(meeting_type)
    found = first_match(selectors.rule_specs(rules), facts)
    rule = next((r for r in rules if found.rule and r.pk == found.rule.key), None)
    record: dict = {
        "country": facts.country,
        "score": {"total": score, "hits": hits},
        "rules": list(found.tried),
        "rule": None if rule is None else {"id": rule.pk, "name": rule.name, "outcome": rule.outcome},
    }
    return facts, rule, record


def lead_evaluate(
    *, meeting_type, email: str, timezone: str, answers: dict, utm: dict, country: str = "", now: datetime
) -> Decision:
    """The routing decision for a submission; reads only (safe for previews)."""
    facts, rule, record = lead_match(
        meeting_type=meeting_type, email=email, timezone=timezone, answers=answers, utm=utm, country=country
    )
    if rule is None:
        record["default"] = "no rule matched: the meeting type's pool"
        route = _weighted(Route(pool=meeting_type.pool), now=now, record=record)
        return Decision(facts, None, route, record=record)
    if rule.outcome == RoutingRule.Outcome.DISQUALIFY:
        return Decision(facts, rule, None, message=rule.disqualify_message, record=record)
    pool = rule.pool or meeting_type.pool
    if rule.outcome == RoutingRule.Outcome.ACCOUNT_OWNER:
        route = _route_owner(meeting_type, rule, pool, facts, now=now, record=record)
    else:
        route = _route_skills(meeting_type, rule, pool, now=now, record=record)
    return Decision(facts, rule, _weighted(route, now=now, record=record), record=record)


def _weighted(route: Route, *, now: datetime, record: dict) -> Route:
    """``route`` with the performance factors of its pool, if the pool enables weighting (recorded)."""
    performance = selectors.performance_factors(route.pool, now=now)
    if performance is None:
        return route
    record["performance"] = performance
    factors = {int(k): v for k, v in performance["factors"].items()}
    return replace(route, factors=factors)


@dataclass(frozen=True)
class RouteResult:
    lead: Lead
    token: str | None
    message: str = ""

    @property
    def disqualified(self) -> bool:
        return self.token is None


def lead_store(
    *,
    meeting_type,
    name: str,
    email: str,
    timezone: str,
    answers: dict,
    utm: dict,
    decision,
    pool,
    now: datetime,
) -> Lead:
    """Store a routed lead (``pool`` None: disqualified, handed to the nurture outbox). ``decision`` is a
    ``Decision`` or an instant decision: its ``facts``, ``rule``, ``message`` and ``record`` are used."""
    lead = Lead.objects.create(
        meeting_type=meeting_type,
        email=email,
        name=name,
        domain=decision.facts.domain,
        timezone=timezone,
        country=decision.facts.country,
        answers=answers,
        utm=utm,
        score=decision.facts.score,
        matched_rule=decision.rule,
        outcome=Lead.Outcome.DISQUALIFIED if pool is None else Lead.Outcome.ROUTED,
        pool=pool,
        decision=decision.record,
    )
    if pool is None:
        lead_emit(lead, message=decision.message, now=now)
    return lead


def lead_route(
    *,
    meeting_type,
    email: str,
    name: str,
    timezone: str,
    answers: dict,
    utm: dict,
    country: str = "",
    now: datetime | None = None,
) -> RouteResult:
    """Decide and store the lead; a disqualified one gets a nurture outbox row. Sends ``lead_routed``."""
    now = now or dj_timezone.now()
    decision = lead_evaluate(
        meeting_type=meeting_type,
        email=email,
        timezone=timezone,
        answers=answers,
        utm=utm,
        country=country,
        now=now,
    )
    route = decision.route
    if route is not None:
        decision.record["route"] = route.record()
    with transaction.atomic():
        lead = lead_store(
            meeting_type=meeting_type,
            name=name,
            email=email,
            timezone=timezone,
            answers=answers,
            utm=utm,
            decision=decision,
            pool=None if route is None else route.pool,
            now=now,
        )
    lead_routed.send(sender=Lead, meeting_type=meeting_type, lead=lead, disqualified=route is None)
    if route is None:
        return RouteResult(lead, None, decision.message)
    signed = replace(route, lead_id=lead.pk)
    return RouteResult(lead, route_sign(signed, meeting_type_id=meeting_type.pk))


class LeadBeingDelivered(BookingError):
    code = "lead_being_delivered"
    status = 409
    default_detail = "This lead is being sent to the nurture webhook right now: delete it in a few minutes."


@dataclass(frozen=True)
class LeadsDeleted:
    count: int
    sent: tuple[str, ...]  # the e-mails of deleted leads whose data the nurture webhook had received


def leads_delete(*, lead_ids: Iterable[int], now: datetime | None = None) -> LeadsDeleted:
    """Delete the leads ``lead_ids`` (those that still exist) and their outbox rows, in one transaction (a
    savepoint inside the admin's own). A disqualified lead's ``lead.disqualified`` rows hold the prospect's
    name, e-mail and answers: left behind, a pending one was still posted to the nurture webhook after the
    prospect asked to be erased, and the outbox page showed them for 30 more days. ``sent`` names the leads
    the webhook had received already (to be erased there too).

    Raises ``LeadBeingDelivered`` (nothing deleted) if one of the rows is being delivered right now (its
    lease runs): that call cannot be taken back, and deleting the row would only hide that it was made.
    The rows are locked first, so a worker claims none of them meanwhile (on PostgreSQL it skips them)."""
    now = now or dj_timezone.now()
    ids = sorted(set(lead_ids))
    with transaction.atomic():
        found = Lead.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        emails = dict(found.values_list("pk", "email"))
        rows = list(lead_messages(emails).select_for_update().order_by("pk"))
        for row in rows:
            if row.status == OutboxMessage.Status.PENDING and row.claimed_until and row.claimed_until > now:
                raise LeadBeingDelivered(
                    f"The lead {emails[row.payload['lead_id']]} is being sent to the nurture webhook right "
                    "now: delete it in a few minutes, once the outbox shows the delivery's outcome."
                )
        delivered = {row.payload["lead_id"] for row in rows if row.status == OutboxMessage.Status.DELIVERED}
        OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).delete()
        Lead.objects.filter(pk__in=emails).delete()
    return LeadsDeleted(len(emails), tuple(emails[pk] for pk in sorted(delivered)))
