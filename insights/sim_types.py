"""Inputs and outputs of the routing simulator (``insights.simulator``): the policy and lead types, the
per-policy outcome and its summary, and the synthetic lead stream. No database access."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from insights.metrics import gini, percentile
from routing.core import Interval, MeetingSpec, MemberState


@dataclass(frozen=True)
class PriorBooking:
    """A host of a booking decided before the simulated period and cancelled since, in any pool: busy (and
    one of the rep's meetings of its local date, for daily caps) until ``cancelled_at``, through the period
    when that is at its end or later. ``own``: a booking of the simulated pool, which also counts toward the
    member's cap in the pool and is a cancellation replayed (its fairness credit is in
    ``Policy.ledger_moves``), once per booking (``booking_id``; a group booking has a row per host)."""

    rep_id: int
    blocked: tuple[datetime, datetime]
    start: datetime
    cancelled_at: datetime
    own: bool = True
    booking_id: int | None = None


@dataclass(frozen=True)
class LedgerMove:
    """A recorded change to the fairness ledger of a booking that is not replayed (decided before the
    period, changed since): at ``at`` the rep's assignment made at ``assigned_at`` starts (``gained``) or
    stops counting for fairness (``counts``) and being one of the rep's assignments, the latest of which is
    its last assignment (``stamp``). ``insights.history.ledger_moves`` reads them from the booking's
    decision history: its decision, reschedules that routed it again, reassignments, cancellation and
    no-shows. Also an assignment without a booking taken back at the instant its lead was routed by hand to
    another rep (``insights.ledger_start.unbooked_charges``: ``gained`` and ``stamp`` false, the rep keeps it
    as its last assignment, as ``routing.ledger.pool_ledger`` reads it)."""

    at: datetime
    rep_id: int
    assigned_at: datetime
    gained: bool
    counts: bool = True
    stamp: bool = True


@dataclass
class Policy:
    """A pool configuration to simulate. ``members`` are the core's member states WITHOUT the replayed
    bookings; ``ledger_events`` are the counted assignments (UTC) made before the simulated period."""

    label: str
    strategy: str
    group_order: str
    fairness_period: str
    members: tuple[MemberState, ...]
    names: dict[int, str]
    adjustments: dict[int, float] = field(default_factory=dict)
    joined: dict[int, list[tuple[datetime, float]]] = field(default_factory=dict)
    ledger_events: dict[int, list[datetime]] = field(default_factory=dict)
    last_assigned: dict[int, datetime] = field(default_factory=dict)
    count_cancellations: bool = False  # a cancelled booking still counts for fairness
    count_no_shows: bool = False  # a no-show still counts for fairness
    prior_cancelled: tuple[PriorBooking, ...] = ()
    # replay: the ledger changes in the period of the bookings decided before it and changed since
    # (reschedules that routed them again, reassignments, cancellations, no-shows), in order, applied at their
    # instant, with the take-backs of assignments without a booking (their lead routed by hand to another
    # rep) at the instant the credit moved; and per rep with such bookings, their assignment instants at the
    # start and its latest other one (``ledger_events`` and ``last_assigned`` hold them too): a move may
    # take one back, and the rep's last assignment is then the latest left
    ledger_moves: tuple[LedgerMove, ...] = ()
    moved_assignments: dict[int, list[datetime]] = field(default_factory=dict)
    # replay: when each member joined the pool (``PoolMember.joined_at``): it is offered and routed leads
    # (and reschedules) decided from then on only
    members_since: dict[int, datetime] = field(default_factory=dict)
    # assignments without a booking (instant routes, leads routed by hand) made in the period, in order:
    # (instant, rep id); not re-decided, each counts for its rep from its instant under every policy (one
    # taken back since: until its take-back in ``ledger_moves``)
    instant: tuple[tuple[datetime, int], ...] = ()
    # replay: synced busy time that appeared (a sync stored it) or disappeared (a later sync removed it) in
    # the period, in order: (instant, rep id, interval, appears); applied under every policy
    busy_events: tuple[tuple[datetime, int, Interval, bool], ...] = ()
    # the period's end: nothing recorded at or after it is applied (a booking decided before the period and
    # cancelled at ``end`` or later blocks its host through it); None: every recorded event is applied
    end: datetime | None = None


@dataclass(frozen=True)
class Move:
    """A recorded reschedule of a replayed booking: at ``at`` it moved to ``start``, keeping its hosts
    (``kept``) or routed again in the whole pool without the reps found busy live (``live_busy``)."""

    at: datetime
    start: datetime
    kept: bool
    live_busy: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Lead:
    at: datetime  # the moment of the routing decision (the booking's ``now``)
    meeting: MeetingSpec
    start: datetime | None = None  # requested start (replay); None = take an offered slot (synthetic)
    live_busy: frozenset[int] = frozenset()  # reps the providers reported busy at booking time (replay)
    recorded_hosts: tuple[int, ...] = ()  # who got it live (replay)
    pick: int = 0  # synthetic: which of the first offered slots the prospect takes
    # replay: the route the booking was made with (``leads.tokens.Route``: candidates, ranks, weights),
    # the account owner the routing rules found and whether they fell back (all as recorded live)
    route: Any = None
    owner: int | None = None
    rules_fallback: bool = False
    cancelled_at: datetime | None = None  # replay: cancelled at this instant, within the period
    # replay: within the period, the instants it was recorded as a no-show (False: it stops counting for
    # fairness unless the pool counts no-shows) or corrected (True: it counts again), in order
    no_shows: tuple[tuple[datetime, bool], ...] = ()
    moves: tuple[Move, ...] = ()  # replay: reschedules within the period (``start`` is the original start)


@dataclass
class Outcome:
    label: str
    strategy: str
    leads: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    target: dict[int, float] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)  # ``share_roles``: shares are within a role
    waits: list[float] = field(default_factory=list)  # minutes from lead to first offered slot
    cap_hits: int = 0
    no_slot: int = 0
    moved: int = 0  # replay: the requested start was not assignable, the next offered one was taken
    reproduced: int = 0  # replay: hosts equal to the recorded live hosts
    owner_leads: int = 0  # replay: leads for which the routing rules found an account owner
    owner_matches: int = 0  # ... and that this policy gave to that owner
    fallbacks: int = 0  # see ``_route``
    cancellations: int = 0  # replayed cancellations (slots freed)
    instant: int = 0  # assignments without a booking applied to the ledger during the period
    assignments: list[tuple[int, ...]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        total = sum(self.counts.values())
        by_role: dict[str, int] = {}
        for rid, n in self.counts.items():
            by_role[self.roles.get(rid, "")] = by_role.get(self.roles.get(rid, ""), 0) + n
        reps = []
        for rid in sorted(self.names, key=lambda r: (self.names[r], r)):
            seats = by_role.get(self.roles.get(rid, ""), 0)
            reps.append(
                {
                    "rep_id": rid,
                    "name": self.names.get(rid, str(rid)),
                    "count": self.counts.get(rid, 0),
                    "share": (self.counts.get(rid, 0) / seats) if seats else 0.0,
                    "target_share": self.target.get(rid, 0.0),
                }
            )
        # the Gini is over the members meant to take part (a positive target share: active member, active
        # rep); a paused member's 0 would make an even split look unfair. One that got leads all the same
        # stays in, so no assignment drops out of the measure.
        roles = {}
        for rep in reps:
            if rep["target_share"] > 0 or rep["count"]:
                roles.setdefault(self.roles.get(rep["rep_id"], ""), []).append(rep["count"])
        return {
            "label": self.label,
            "strategy": self.strategy,
            "leads": self.leads,
            "assigned": total,
            "reps": reps,
            "gini": max((gini(counts) for counts in roles.values()), default=0.0),  # the least fair role
            "cap_hits": self.cap_hits,
            "no_slot": self.no_slot,
            "moved": self.moved,
            "median_wait_minutes": percentile(self.waits, 50),
            "p90_wait_minutes": percentile(self.waits, 90),
            "owner_leads": self.owner_leads,
            "owner_matches": self.owner_matches if self.owner_leads else None,
            "fallbacks": self.fallbacks,
            "cancellations": self.cancellations,
            "instant_assignments": self.instant,
            "reproduced": self.reproduced,
        }


def share_roles(policy: Policy) -> dict[int, str]:
    """The role each member's share is taken within: its role in a group pool (a meeting takes one member
    of every role), one for all otherwise."""
    group = policy.strategy == "group"
    return {m.rep_id: (m.role if group else "") for m in policy.members}


def target_shares(policy: Policy) -> dict[int, float]:
    """Weight ÷ the total active weight of the member's role (``share_roles``)."""
    roles = share_roles(policy)
    active = {m.rep_id: m.weight for m in policy.members if m.active and m.rep.active}
    total: dict[str, float] = {}
    for rid, weight in active.items():
        total[roles[rid]] = total.get(roles[rid], 0.0) + weight
    return {
        m.rep_id: (active.get(m.rep_id, 0.0) / total[roles[m.rep_id]] if total.get(roles[m.rep_id]) else 0.0)
        for m in policy.members
    }


def synthetic_leads(
    meeting: MeetingSpec,
    *,
    start: datetime,
    hours: float,
    rate_per_hour: float,
    seed: int,
    pick_from: int = 5,
) -> list[Lead]:
    """A Poisson stream of leads (exponential gaps at ``rate_per_hour``) over ``hours`` from ``start``; each
    prospect takes one of the first ``pick_from`` offered slots, chosen with the seeded generator."""
    if not (math.isfinite(rate_per_hour) and math.isfinite(hours) and rate_per_hour > 0 and hours > 0):
        raise ValueError("rate and horizon must be finite and positive")
    rng = random.Random(seed)
    leads, t = [], 0.0
    while True:
        t += rng.expovariate(rate_per_hour)
        if t >= hours:
            return leads
        at = (start + timedelta(hours=t)).replace(microsecond=0)
        leads.append(Lead(at=at, meeting=meeting, pick=rng.randrange(pick_from)))
