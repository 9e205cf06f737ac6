"""Instant routing: the rep free right NOW for a lead (an inbound call, a form handed straight to a rep).

``instant_route`` is the service behind ``POST /api/v1/route``. It applies the same score, rules, skills and
account ownership as the meeting-type route (``leads.services.lead_evaluate``), but every "has a free slot
within ``fallback_after_days``" check becomes "is free at this instant":

* a member is free now iff member and rep are active (and the rep is not withheld by a stale calendar), the
  instant lies inside one of the rep's working windows and outside their time off, neither the rep's nor
  the member's daily cap is reached on the rep's local date of today, and no busy interval (calendar busy
  time or an active booking's blocked range, buffers included) contains the instant;
* candidates are tried in the pool strategy's order: ``ranked`` (and ``group`` with rank order) by rank, every
  other strategy in next-up order (lowest load first). Instant assignments of the current fairness period
  count towards the load here (see ``INSTANT_REASON``), so successive instant leads rotate.

With ``dry_run`` nothing is written. Otherwise a routed lead is stored as a ``Lead`` (the rep in
``decision["rep"]``; the model has no rep column) plus one ``assigned`` ledger entry without a booking for
the rep in the pool; a disqualified lead is stored and handed to nurture, like the meeting-type route. No rep
free now: ``NoRepAvailable`` (409) and nothing is written. The write is one durable transaction that locks
the pools the rules can use (instant routes of a pool take turns) after the owner lookup (a CRM's network
call is never made under the locks), and whose lock waits end after ``BOOKING_LOCK_TIMEOUT_MS``: ``TryAgain``
(409), as the booking API's writes. An ``Idempotency-Key`` makes a retry replay the first response
(``leads.instant_keys``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from booking.errors import BookingError, InvalidInput, TryAgain
from booking.models import MeetingType
from booking.services import idempotency, locking
from leads import instant_keys, selectors
from leads.models import Lead, RoutingRule
from leads.owners import OwnerMatch, owner_lookup
from leads.rules_core import LeadFacts, is_free_mail
from leads.services import _weighted, lead_match, lead_store
from leads.tokens import Route
from routing.core import Interval, MemberState, next_up_order
from routing.core.availability import reason_now
from routing.core.ledger import rank_key
from routing.core.results import CHOSEN, NOT_NEEDED, SKIPPED, candidate, iso
from routing.models import Pool
from routing.selectors import load_pool_state
from routing.services import ledger_assigned

# Reason prefix of the ledger entries of instant assignments (kind ``assigned``, no booking);
# ``routing.ledger.pool_ledger`` counts them like bookings in the current fairness period.
INSTANT_REASON = "instant route"
WITHHELD = "withheld"  # the rep's calendar cannot be trusted right now (calendars.selectors)
OwnerAnswer = tuple[OwnerMatch | None, str]  # ``owner_lookup``'s: the owner, or None and why


class NoRepAvailable(BookingError):
    """Nobody the rules allow is free at this instant; ``decision`` explains every candidate."""

    code = "no_rep_available"
    status = 409
    default_detail = "No rep is available right now."


class RulesChanged(TryAgain):
    """The meeting type's rules changed while the lead was routed: under the pool locks its rule is an
    ``account_owner`` one whose owner was not looked up before them (nothing is written)."""

    default_detail = "The meeting type's routing rules changed meanwhile; please try again."


def pick_now(meeting_type, route: Route, *, now: datetime) -> tuple[int | None, dict]:
    """The first member of ``route`` free at ``now`` in pool order (None: nobody), and the attempt record."""
    pool = route.pool
    state = load_pool_state(pool, meeting_type, now=now, window=Interval(now, now + timedelta(minutes=1)))
    spec = replace(route, rep_ids=None).restrict(state.spec)  # ranks and performance factors only
    members = [m for m in spec.members if route.rep_ids is None or m.rep_id in route.rep_ids]
    by_rank = spec.strategy == "ranked" or (spec.strategy == "group" and spec.group_order == "rank")
    ordered = sorted(members, key=rank_key) if by_rank else next_up_order(members)
    chosen: MemberState | None = None
    entries = []
    for member in ordered:
        if chosen is not None:
            entries.append(candidate(member, NOT_NEEDED, None))
            continue
        reason = WITHHELD if member.rep_id in state.withheld else reason_now(member, now)
        if reason is None:
            chosen = member
            entries.append(candidate(member, CHOSEN, None))
        else:
            entries.append(candidate(member, SKIPPED, reason))
    record = {
        "pool": pool.slug,
        "strategy": pool.strategy,
        "order": "rank" if by_rank else "next_up",
        "restricted_to": None if route.rep_ids is None else sorted(route.rep_ids),
        "candidates": entries,
        "rep_id": None if chosen is None else chosen.rep_id,
    }
    return (None if chosen is None else chosen.rep_id), record


@dataclass
class InstantDecision:
    facts: LeadFacts
    rule: RoutingRule | None
    disqualified: bool
    rep_id: int | None = None
    pool: Pool | None = None
    message: str = ""
    record: dict | None = None


class _Attempts:
    """Runs ``pick_now`` for successive routes, keeping every attempt in the record."""

    def __init__(self, meeting_type, *, now: datetime, record: dict):
        self.meeting_type, self.now, self.record = meeting_type, now, record
        record["attempts"] = []

    def __call__(self, route: Route) -> tuple[int | None, Pool]:
        route = _weighted(route, now=self.now, record=self.record)
        rep_id, attempt = pick_now(self.meeting_type, route, now=self.now)
        self.record["attempts"].append(attempt)
        return rep_id, route.pool


def _ask_owner(facts: LeadFacts) -> OwnerAnswer:
    return owner_lookup(email=facts.email.lower(), domain=facts.domain)


def _owner(
    meeting_type, rule, pool, facts, answer: OwnerAnswer, attempt: _Attempts, record: dict
) -> tuple[int | None, Pool]:
    match, why = answer
    info: dict = {"free_mail": is_free_mail(facts.domain)}
    record["owner"] = info
    if match is None:  # none, or the lookup failed (a CRM timeout): the fallback
        info.update(used=False, reason=why)
    else:
        info.update(rep_id=match.rep_id, source=match.source, detail=match.detail)
        if match.rep_id not in selectors.member_rep_ids(pool):
            info.update(used=False, reason=f"owner is not an active member of pool {pool.slug}")
        else:
            rep_id, used_pool = attempt(Route(pool=pool, rep_ids=frozenset({match.rep_id})))
            if rep_id is not None:
                info["used"] = True
                return rep_id, used_pool
            why = record["attempts"][-1]["candidates"][0]["reason"]
            info.update(used=False, reason=f"owner is not free now ({why})")
    fallback = rule.fallback_pool or meeting_type.pool
    record["fallback"] = {"used": True, "pool": fallback.slug, "reason": info["reason"]}
    return attempt(Route(pool=fallback))


def _skills(rule, pool, attempt: _Attempts, record: dict) -> tuple[int | None, Pool]:
    skills = rule.required_skills or {}
    if not skills:
        return attempt(Route(pool=pool))
    skilled = selectors.skilled_rep_ids(pool, skills)
    ranks = selectors.proficiency_ranks(pool, skilled, skills) if pool.strategy == "ranked" else {}
    record["skills"] = {"required": skills, "matching": sorted(skilled)}
    rep_id, used_pool = attempt(Route(pool=pool, rep_ids=frozenset(skilled), skills=skills, ranks=ranks))
    if rep_id is not None:
        return rep_id, used_pool
    if rule.fallback_pool is None:
        record["fallback"] = {"used": False, "reason": "no skilled member free now; no fallback pool set"}
        return None, used_pool
    record["fallback"] = {
        "used": True,
        "pool": rule.fallback_pool.slug,
        "reason": f"no member with {skills} is free now",
    }
    return attempt(Route(pool=rule.fallback_pool))


def instant_evaluate(
    *,
    meeting_type,
    email: str,
    timezone: str,
    answers: dict,
    utm: dict,
    country: str = "",
    now: datetime,
    owner: Callable[[LeadFacts], OwnerAnswer] = _ask_owner,
) -> InstantDecision:
    """The instant routing decision for a lead; reads only. ``owner``: the owner lookup's answer for a lead
    of an ``account_owner`` rule (by default the backend is asked; ``instant_route`` asked it before)."""
    facts, rule, matched = lead_match(
        meeting_type=meeting_type, email=email, timezone=timezone, answers=answers, utm=utm, country=country
    )
    record: dict = {"mode": "instant", "at": iso(now), **matched}
    if rule is not None and rule.outcome == RoutingRule.Outcome.DISQUALIFY:
        return InstantDecision(facts, rule, True, message=rule.disqualify_message, record=record)
    attempt = _Attempts(meeting_type, now=now, record=record)
    if rule is None:
        record["default"] = "no rule matched: the meeting type's pool"
        rep_id, pool = attempt(Route(pool=meeting_type.pool))
    elif rule.outcome == RoutingRule.Outcome.ACCOUNT_OWNER:
        pool = rule.pool or meeting_type.pool
        rep_id, pool = _owner(meeting_type, rule, pool, facts, owner(facts), attempt, record)
    else:
        rep_id, pool = _skills(rule, rule.pool or meeting_type.pool, attempt, record)
    record["rep"] = None
    if rep_id is not None:
        rep = pool.reps.get(pk=rep_id)
        record["rep"] = {"id": rep.pk, "name": rep.name, "email": rep.email, "pool": pool.slug}
    return InstantDecision(facts, rule, False, rep_id=rep_id, pool=pool, record=record)


@dataclass(frozen=True)
class InstantResult:
    body: dict  # the 200 response (``instant_keys.response_body``), or the one stored for the key
    lead: Lead | None = None  # None for a dry run or a replay
    replayed: bool = False  # the response of an earlier request with the same Idempotency-Key


def _lock_pools(meeting_type) -> None:
    """Serialise instant routes that may share a pool (PostgreSQL row locks; SQLite: BEGIN IMMEDIATE)."""
    ids = {meeting_type.pool_id}
    for pool_id, fallback_id in RoutingRule.objects.filter(
        meeting_type=meeting_type, active=True
    ).values_list("pool_id", "fallback_pool_id"):
        ids.update(i for i in (pool_id, fallback_id) if i is not None)
    # FOR NO KEY UPDATE: instant routes of a pool take turns, and the foreign-key checks of rows naming the
    # pool (every booking of it, while it holds its reps' locks) do not wait for them as under FOR UPDATE
    pools = Pool.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    list(pools.values_list("pk", flat=True))


def _owner_first(meeting_type, lead: dict) -> OwnerAnswer | None:
    """The owner lookup for a lead whose rule is an ``account_owner`` one, made before the pools are locked:
    ``BATON_OWNER_BACKEND`` may be a CRM, a network call of seconds when it is slow, and under the locks it
    held up every instant route of the pools that long. None for a lead of another rule (nothing asked)."""
    facts, rule, _ = lead_match(meeting_type=meeting_type, **lead)
    if rule is None or rule.outcome != RoutingRule.Outcome.ACCOUNT_OWNER:
        return None
    return _ask_owner(facts)


def _answered(found: OwnerAnswer | None) -> Callable[[LeadFacts], OwnerAnswer]:
    """``instant_evaluate``'s ``owner`` under the locks: the answer ``_owner_first`` got, never a new call."""

    def owner(facts: LeadFacts) -> OwnerAnswer:
        if found is None:  # the lead's rule was another before the locks: an admin changed the rules
            raise RulesChanged()
        return found

    return owner


def instant_route(
    *,
    meeting_type,
    email: str,
    timezone: str,
    answers: dict,
    utm: dict,
    country: str = "",
    name: str = "",
    dry_run: bool = False,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> InstantResult:
    """Route a lead to the rep free now; store it unless ``dry_run``. Raises ``NoRepAvailable``, ``TryAgain``
    (a lock wait, the pools' or the key's, over ``BOOKING_LOCK_TIMEOUT_MS`` or ended by the database;
    nothing written) or ``IdempotencyConflict``; with ``idempotency_key`` (not for a dry run) a same-key
    same-body request replays the first response (``leads.instant_keys``)."""
    now = now or dj_timezone.now()
    lead = {"email": email, "timezone": timezone, "answers": answers, "utm": utm, "country": country}
    if dry_run:
        decision = _decided(instant_evaluate(meeting_type=meeting_type, **lead, now=now))
        return InstantResult(instant_keys.response_body(decision, lead_id=None, dry_run=True))
    key = instant_keys.instant_key(idempotency_key)
    request_hash = instant_keys.request_hash(meeting_type, name=name, **lead) if key else ""
    try:
        return locking.conflicts(
            lambda: _route(meeting_type, lead, name=name, key=key, request_hash=request_hash, now=now)
        )
    except IntegrityError as exc:  # the key's row refused: a request with the key stored its lead meanwhile
        if key and idempotency.is_taken(exc):
            stored = idempotency.replay(key, request_hash, now=now)
            if stored:
                return InstantResult(stored[1], replayed=True)
            raise TryAgain() from None  # a live row whose response cannot be read (another SECRET_KEY)
        raise


def instant_replay(
    *,
    slug: str,
    idempotency_key: str | None,
    requests: Callable[[MeetingType], Iterable[dict]],
    now: datetime | None = None,
) -> InstantResult | None:
    """The stored response of the instant route made with ``idempotency_key`` for meeting type ``slug``
    (active or not) when the request is that route's, for a retry that would not reach ``instant_route``
    any more: an admin deactivated the meeting type meanwhile (404 now) or changed its questions (400 now),
    as ``booking.services.booking_replay`` for a booking. ``requests(meeting_type)`` gives the request as
    validated each way it may have been when it was first sent (a dry run's stored nothing: skipped). None
    when the key is malformed, nothing is stored for it, or not for the request: the caller answers as it
    would have (``idempotency.replay_as_first_sent``)."""
    now = now or dj_timezone.now()
    try:
        key = instant_keys.instant_key(idempotency_key)
    except InvalidInput:
        return None

    def hashes() -> Iterator[str]:
        meeting_type = MeetingType.objects.filter(slug=slug).first()
        for request in requests(meeting_type) if meeting_type else ():
            if not request.get("dry_run"):
                fields = ("email", "name", "timezone", "answers", "utm", "country")
                yield instant_keys.request_hash(meeting_type, **{f: request[f] for f in fields})

    replayed = idempotency.replay_as_first_sent(key, hashes, now=now)
    return None if replayed is None else InstantResult(replayed[1], replayed=True)


def _decided(decision: InstantDecision) -> InstantDecision:
    if not decision.disqualified and decision.rep_id is None:
        raise NoRepAvailable(decision=decision.record)
    return decision


def _route(meeting_type, lead: dict, *, name: str, key: str | None, request_hash: str, now: datetime):
    """Decide and store in one durable transaction whose lock waits end after ``BOOKING_LOCK_TIMEOUT_MS``
    (``locking.change``, or the key's ``idempotency.turn`` on PostgreSQL, which opens it and sets the lock
    timeout first), the pools locked (``_lock_pools``) after the owner lookup: under the locks only the
    database is read. With a key, as a booking's: the stored response of an earlier request replays (under
    the key's turn on PostgreSQL, so a duplicate waits for the first); elsewhere the key's row is claimed
    first (``idempotency.begin``), and the response is stored with the lead."""
    with idempotency.turn(key, request_hash, now=now) as turn:
        if turn.stored:
            return InstantResult(turn.stored[1], replayed=True)
        found = _owner_first(meeting_type, lead)  # in a key's turn only the key's lock is held meanwhile
        with transaction.atomic(savepoint=False) if turn.opened else locking.change():
            row = idempotency.begin(key, request_hash, now=now) if key and not turn.opened else None
            _lock_pools(meeting_type)
            owner = _answered(found)
            decision = _decided(instant_evaluate(meeting_type=meeting_type, **lead, now=now, owner=owner))
            saved = lead_store(
                meeting_type=meeting_type,
                name=name,
                email=lead["email"],
                timezone=lead["timezone"],
                answers=lead["answers"],
                utm=lead["utm"],
                decision=decision,
                pool=None if decision.disqualified else decision.pool,
                now=now,
            )
            if not decision.disqualified:
                ledger_assigned(
                    pool_id=decision.pool.pk,
                    booking_id=None,
                    rep_ids=[decision.rep_id],
                    reason=f"{INSTANT_REASON}: lead {saved.pk}",
                )
            body = instant_keys.response_body(decision, lead_id=saved.pk, dry_run=False)
            if key:
                instant_keys.store(idempotency.Claim(key, request_hash, row), body, now=now)
    return InstantResult(body, saved)
