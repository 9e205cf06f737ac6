"""The routing simulator: replay a stream of leads through the SAME routing core as live booking.

Nothing here touches the database. ``insights.selectors`` loads a ``Policy`` (the pool's members as the
core sees them, with the replayed bookings taken out of their calendars) and a list of ``Lead``; ``simulate``
walks the leads in time order, keeping the fairness ledger, the busy times and the daily-cap counters in
memory, and for each lead calls ``routing.core.offered_slots`` (first offered slot → wait) and
``routing.core.assign`` (who gets it) exactly as ``booking.services.routing.choose_hosts`` does — within
the lead's recorded route (``leads.tokens.Route.restrict``, as ``booking.services.create`` applies it).
Recorded cancellations free their slot at their cancellation instant (and leave the ledger unless the pool
counts cancellations); recorded no-shows leave the ledger at their instant unless the pool counts no-shows;
recorded reschedules move their booking at their instant; recorded assignments without a booking count for
their rep from their instant (one taken back, until the ledger move of its take-back); the ledger changes
of bookings decided before the period (``Policy.ledger_moves``) apply at theirs; a member takes part from
the instant it joined the pool (``Policy.members_since``); synced busy time appears and disappears at its
recorded sync instants (``Policy.busy_events``). Routing one lead and moving a booking are in
``insights.sim_steps``; types and the outcome summary in ``insights.sim_types``.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from insights.sim_steps import Held, blocked, reach, reschedule, route
from insights.sim_types import (
    Lead,
    Outcome,
    Policy,
    PriorBooking,
    share_roles,
    synthetic_leads,
    target_shares,
)
from routing.core import Interval, MeetingSpec, MemberState, PoolSpec, RepSchedule, free_starts, offered_slots
from routing.core.ledger import head_start_expired
from routing.ledger import fairness_period_start

__all__ = ["Lead", "Outcome", "Policy", "PriorBooking", "simulate", "synthetic_leads", "target_shares"]

# First-slot search windows (days after the lead): small windows first, so a busy month is not scanned
# when tomorrow has a slot.
SEARCH_STEPS = (1 / 12, 1, 3, 10, 30, 400)
# Strategies that offer the union of the members' free starts: a member with no free start in a window can
# be left out of the pool handed to ``offered_slots`` without changing what it returns.
UNION = {"first_available", "ranked"}
CHUNK = timedelta(days=2)
BUCKET = timedelta(days=2)


@dataclass
class _Rep:
    member: MemberState
    keys: list[tuple[datetime, datetime]]  # busy (start, end), sorted
    ivs: list[Interval]  # the same intervals, for the core
    longest: timedelta
    per_date: dict
    pool_per_date: dict
    events: list[datetime]
    zone: ZoneInfo
    last: datetime | None
    # assignment instants (``last`` = the latest): those a ledger move or a reschedule may take back
    stamps: list[datetime] = field(default_factory=list)
    version: int = 0  # bumped on every simulated booking (its free starts only shrink)
    cache: dict = field(default_factory=dict)  # (day, version, count) → MemberState


class _Pool:
    """Stand-in for ``routing.models.Pool`` so ``fairness_period_start`` is reused, not re-implemented."""

    def __init__(self, fairness_period: str):
        self.fairness_period = fairness_period


# Strategies whose offered set depends only on calendars and caps (not on the ledger): between two replayed
# cancellations it only shrinks as time passes, so the first offered slot never moves backwards (a
# cancellation resets the cursor).
MONOTONE = {"first_available", "ranked", "group"}


class _State:
    def __init__(self, policy: Policy):
        self.policy = policy
        self.period = _Pool(policy.fairness_period)
        self.rolling = policy.fairness_period == "rolling_30d"
        self.reps: dict[int, _Rep] = {}
        self.cursor: dict[MeetingSpec, datetime] = {}
        self._ledger: tuple[datetime | None, dict] = (None, {})
        self.free_cache: dict[tuple[int, MeetingSpec], tuple] = {}
        for m in policy.members:
            ivs = sorted(m.rep.busy, key=lambda iv: (iv.start, iv.end))
            last = policy.last_assigned.get(m.rep_id)
            self.reps[m.rep_id] = _Rep(
                member=m,
                keys=[(iv.start, iv.end) for iv in ivs],
                ivs=ivs,
                longest=max((iv.end - iv.start for iv in ivs), default=timedelta(0)),
                per_date=dict(m.rep.meetings_per_local_date),
                pool_per_date=dict(m.pool_meetings_per_local_date),
                events=sorted(policy.ledger_events.get(m.rep_id, [])),
                zone=ZoneInfo(m.rep.timezone),
                last=last,
                stamps=sorted(policy.moved_assignments.get(m.rep_id) or ([last] if last else [])),
            )
        # members not in the pool yet (``Policy.members_since``): ``simulate`` lets each in at its instant
        self.waiting = set(policy.members_since) & set(self.reps)
        for prior in policy.prior_cancelled:  # its fairness credit comes with ``policy.ledger_moves``
            rep = self.reps.get(prior.rep_id)
            if rep is not None:
                self._block(rep, prior.blocked, prior.start, pool=prior.own)

    def _counts(self, now: datetime) -> dict[int, float]:
        if self._ledger[0] == now:
            return self._ledger[1]
        start = fairness_period_start(self.period, now=now)
        counts = {}
        for rid, rep in self.reps.items():
            raw = (
                len(rep.events) if start is None else len(rep.events) - bisect.bisect_left(rep.events, start)
            )
            joined = self.policy.joined.get(rid, ())
            expired = head_start_expired(joined, start=start, now=now, rolling=self.rolling)
            counts[rid] = raw + self.policy.adjustments.get(rid, 0.0) - expired
        self._ledger = (now, counts)
        return counts

    @staticmethod
    def _busy(rep: _Rep, lo: datetime | None, hi: datetime | None) -> tuple[Interval, ...]:
        if lo is None:
            return tuple(rep.ivs)
        i = bisect.bisect_left(rep.keys, (lo - rep.longest,))
        j = bisect.bisect_left(rep.keys, (hi,))
        return tuple(iv for iv in rep.ivs[i:j] if iv.end > lo)

    def _maybe_free(self, rid: int, meeting: MeetingSpec, now: datetime, lo: datetime, hi: datetime) -> bool:
        """False only if the member certainly has no free start in ``[lo, hi)``: a cached ``free_starts`` of
        the member over a chunk, computed at an earlier ``now`` and the same member version (free starts only
        shrink with time and bookings, so the cached list is a superset of today's)."""
        rep = self.reps[rid]
        cached = self.free_cache.get((rid, meeting))
        if cached is None or cached[2] != rep.version or lo < cached[0] or hi > cached[1]:
            c1 = min(max(hi, lo + CHUNK), now + timedelta(days=meeting.horizon_days))
            if c1 < hi:
                return True
            before, length = reach(meeting)
            member = self.member(rep, now, lo - before, c1 + length)
            cached = (lo, c1, rep.version, free_starts(member, meeting, now=now, window=Interval(lo, c1)))
            self.free_cache[(rid, meeting)] = cached
        starts = cached[3]
        i = bisect.bisect_left(starts, lo)
        return i < len(starts) and starts[i] < hi

    def member(self, rep: _Rep, now: datetime, lo: datetime | None, hi: datetime | None) -> MemberState:
        """The member as the core sees it at ``now``. Busy times overlapping ``[lo, hi)`` are handed over; a
        window inside two UTC days gets those two days' busy times (a superset, which changes nothing) so
        the state can be reused until the member books or its count changes."""
        m, r = rep.member, rep.member.rep
        count = self._counts(now)[r.rep_id]
        key = None
        if lo is not None:
            day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
            if hi <= day + BUCKET:
                key = (day, rep.version, count)
                hit = rep.cache.get(key)
                if hit is not None:
                    return hit
                lo, hi = day, day + BUCKET
        state = self._member(rep, m, r, count, lo, hi)
        if key is not None:
            if len(rep.cache) > 8:
                rep.cache.clear()
            rep.cache[key] = state
        return state

    def _member(self, rep, m, r, count, lo, hi) -> MemberState:
        schedule = RepSchedule(
            r.rep_id, r.timezone, r.weekly_hours, r.date_overrides, r.time_off, self._busy(rep, lo, hi),
            r.active, r.daily_cap, rep.per_date, r.name,
        )  # fmt: skip
        return MemberState(
            schedule, m.rank, m.weight, m.role, m.active, m.daily_cap, rep.pool_per_date, count, rep.last
        )  # fmt: skip

    def spec(
        self,
        now: datetime,
        lo: datetime | None = None,
        hi: datetime | None = None,
        only: list[int] | None = None,
    ) -> PoolSpec:
        """The pool (or the members ``only``) as the core sees it at ``now``; busy times cut to those
        overlapping ``[lo, hi)`` when given (the caller widens the window by the meeting's length and
        buffers)."""
        if self.policy.strategy not in MONOTONE:  # round_robin's offered() looks over the whole horizon
            lo = hi = None
        reps = self.reps.values() if only is None else [self.reps[rid] for rid in only]
        if self.waiting:
            reps = [rep for rep in reps if rep.member.rep_id not in self.waiting]
        members = [self.member(rep, now, lo, hi) for rep in reps]
        return PoolSpec(
            strategy=self.policy.strategy, members=tuple(members), group_order=self.policy.group_order
        )

    @staticmethod
    def _block(rep: _Rep, key: tuple[datetime, datetime], start: datetime, *, pool: bool = True) -> None:
        """The rep is busy over ``key`` with a meeting at ``start``: one more of its meetings that local
        date, and one more in the pool unless the meeting is another pool's (``pool`` false)."""
        i = bisect.bisect_left(rep.keys, key)
        rep.keys.insert(i, key)
        rep.ivs.insert(i, Interval(*key))
        rep.longest = max(rep.longest, key[1] - key[0])
        day = start.astimezone(rep.zone).date()
        rep.per_date[day] = rep.per_date.get(day, 0) + 1
        if pool:
            rep.pool_per_date[day] = rep.pool_per_date.get(day, 0) + 1

    def book(self, rep_id: int, meeting: MeetingSpec, start: datetime, now: datetime) -> None:
        self.take(rep_id, meeting, start)
        self.assigned(rep_id, now)

    def take(self, rep_id: int, meeting: MeetingSpec, start: datetime) -> None:
        """The rep's calendar takes a meeting at ``start`` (no ledger change)."""
        rep = self.reps[rep_id]
        self._block(rep, blocked(meeting, start), start)
        rep.version += 1

    def assigned(self, rep_id: int, at: datetime) -> None:
        """An assignment counted from ``at`` and the rep's latest assignment (also one without a booking:
        instant route, lead routed by hand)."""
        self.change(rep_id, at, gained=True)

    def unassigned(self, rep_id: int, at: datetime) -> None:
        """The assignment made at ``at`` is taken from the rep (routed again on reschedule): it no longer
        counts nor is its last assignment, like a host row released as reassigned."""
        self.change(rep_id, at, gained=False)

    def change(
        self, rep_id: int, at: datetime, *, gained: bool, counts: bool = True, stamp: bool = True
    ) -> None:
        """The rep's assignment made at ``at`` starts (``gained``) or stops counting for fairness (``counts``)
        and being one of its assignments, the latest of which is its last assignment (``stamp``). The version
        bump drops cached states (their count and ``last``)."""
        rep = self.reps[rep_id]
        for instants, changed in ((rep.events, counts), (rep.stamps, stamp)):
            if not changed:
                continue
            j = bisect.bisect_left(instants, at)
            if gained:
                instants.insert(j, at)
            elif j < len(instants) and instants[j] == at:
                del instants[j]
        rep.last = rep.stamps[-1] if rep.stamps else None
        self._ledger = (None, {})
        rep.version += 1

    def joined(self, rep_id: int) -> None:
        """The member joined the pool: from now on it is offered and routed leads."""
        self.waiting.discard(rep_id)
        self.cursor.clear()  # the offer may grow

    def release(
        self,
        rep_id: int,
        key: tuple[datetime, datetime],
        start: datetime,
        event: datetime | None,
        pool: bool = True,
    ) -> None:
        """A cancellation: the blocked range ``key`` is free again and, if ``event`` is given (the pool does
        not count cancellations), that assignment leaves the fairness ledger. ``pool`` false: another
        pool's meeting (not among the rep's meetings in this pool)."""
        rep = self.reps[rep_id]
        i = bisect.bisect_left(rep.keys, key)
        if i < len(rep.keys) and rep.keys[i] == key:
            del rep.keys[i], rep.ivs[i]
        day = start.astimezone(rep.zone).date()
        for counter in (rep.per_date, rep.pool_per_date) if pool else (rep.per_date,):
            counter[day] = max(0, counter.get(day, 0) - 1)
        if event is not None:
            j = bisect.bisect_left(rep.events, event)
            if j < len(rep.events) and rep.events[j] == event:
                del rep.events[j]
        self._ledger = (None, {})
        rep.version += 1
        self.cursor.clear()  # the offer may grow again

    def busy_changed(self, rep_id: int, iv: Interval, appears: bool) -> None:
        """Synced busy time ``iv`` appeared in (a sync stored it) or disappeared from the rep's calendar."""
        rep = self.reps[rep_id]
        key = (iv.start, iv.end)
        i = bisect.bisect_left(rep.keys, key)
        if appears:
            rep.keys.insert(i, key)
            rep.ivs.insert(i, Interval(*key))
            rep.longest = max(rep.longest, key[1] - key[0])
        elif i < len(rep.keys) and rep.keys[i] == key:
            del rep.keys[i], rep.ivs[i]
            self.cursor.clear()  # the offer may grow again
        else:
            return
        rep.version += 1

    def offered(
        self,
        meeting: MeetingSpec,
        now: datetime,
        after: datetime,
        limit: int,
        shape: Callable[[PoolSpec], PoolSpec] | None = None,
    ) -> list[datetime]:
        """Up to ``limit`` offered starts at or after ``after`` (searching small windows first). ``shape``:
        the pool as one lead sees it (its route, without its reps busy live), whose offer is part of the
        pool's, so the cursor still bounds it (but is not moved by it)."""
        monotone = self.policy.strategy in MONOTONE
        from_now = after == now and shape is None
        if monotone and meeting in self.cursor:
            after = max(after, self.cursor[meeting])
        before, length = reach(meeting)
        found: list[datetime] = []
        lo = after
        end = now + timedelta(days=meeting.horizon_days)
        for days in SEARCH_STEPS:
            hi = min(after + timedelta(days=days), end)
            if hi > lo:
                only = None
                if self.policy.strategy in UNION:
                    only = [
                        rid
                        for rid in self.reps
                        if rid not in self.waiting and self._maybe_free(rid, meeting, now, lo, hi)
                    ]
                spec = self.spec(now, lo - before, hi + length, only)
                if shape is not None:
                    spec = shape(spec)
                found.extend(offered_slots(spec, meeting, now=now, window=Interval(lo, hi)))
                if len(found) >= limit:
                    break
            lo = hi
            if lo >= end:
                break
        if monotone and from_now and found:
            self.cursor[meeting] = found[0]
        return found[:limit]


def simulate(
    policy: Policy, leads: list[Lead], *, progress: Callable[[int], None] | None = None, pick_from: int = 5
) -> Outcome:
    """Route ``leads`` (sorted by ``at``) under ``policy``; returns the figures. Writes nothing."""
    state = _State(policy)
    out = Outcome(label=policy.label, strategy=policy.strategy, names=dict(policy.names))
    out.target, out.roles = target_shares(policy), share_roles(policy)
    counted = policy.count_cancellations
    # timeline of recorded events, a heap of (instant, seq, action, ...): "instant" (an assignment without a
    # booking), "prior" (a host row of a booking decided before the period is cancelled), "ledger" (a ledger
    # change of such a booking), "joined" (a member joins the pool), "busy" (synced busy time appears or
    # disappears), "move" (a replayed booking is rescheduled), "no_show" (one is recorded as a no-show, or
    # corrected), "cancel" (one is cancelled)
    pending: list[tuple] = []
    seq = itertools.count()
    for at, rep_id in policy.instant:  # first: before anything else recorded at the same instant
        if rep_id in state.reps:
            heapq.heappush(pending, (at.astimezone(UTC), next(seq), ("instant", rep_id)))
    for p in policy.prior_cancelled:  # a host the policy leaves out: still one of the pool's cancellations
        heapq.heappush(pending, (p.cancelled_at, next(seq), ("prior", p)))
    for move in policy.ledger_moves:
        if move.rep_id in state.reps:
            heapq.heappush(pending, (move.at.astimezone(UTC), next(seq), ("ledger", move)))
    for rep_id, at in policy.members_since.items():
        if rep_id in state.reps:
            heapq.heappush(pending, (at.astimezone(UTC), next(seq), ("joined", rep_id)))
    for at, rep_id, iv, appears in policy.busy_events:
        if rep_id in state.reps:
            heapq.heappush(pending, (at.astimezone(UTC), next(seq), ("busy", rep_id, iv, appears)))
    held: dict[int, Held] = {}  # lead index → its current hosts, start and ledger events
    prior_seen: set[int] = set()  # this pool's bookings decided before the period counted as cancelled

    def apply(at: datetime, item: tuple) -> None:
        if item[0] == "instant":
            state.assigned(item[1], at)
            out.instant += 1
        elif item[0] == "prior":  # its credit, if this pool's, leaves with its "ledger" moves
            p = item[1]
            if p.rep_id in state.reps:
                state.release(p.rep_id, p.blocked, p.start, None, pool=p.own)
            if p.own and (p.booking_id is None or p.booking_id not in prior_seen):  # one per booking
                out.cancellations += 1
                if p.booking_id is not None:
                    prior_seen.add(p.booking_id)
        elif item[0] == "ledger":
            m = item[1]
            state.change(m.rep_id, m.assigned_at, gained=m.gained, counts=m.counts, stamp=m.stamp)
        elif item[0] == "joined":
            state.joined(item[1])
        elif item[0] == "busy":
            state.busy_changed(*item[1:])
        elif item[0] == "move":
            reschedule(state, leads[item[1]], held[item[1]], item[2], at)
        elif item[0] == "no_show":  # the credit leaves the ledger, or comes back
            h = held[item[1]]
            for rep_id in h.hosts:
                state.change(rep_id, h.events[rep_id], gained=item[2], stamp=False)
        else:
            h = held[item[1]]
            for rep_id in h.hosts:
                key = blocked(leads[item[1]].meeting, h.start)
                state.release(rep_id, key, h.start, None if counted else h.events[rep_id])
            out.cancellations += 1  # one booking, however many hosts it had

    for i, lead in enumerate(leads):
        out.leads += 1
        now = lead.at.astimezone(UTC)
        while pending and pending[0][0] <= now:
            at, _seq, item = heapq.heappop(pending)
            apply(at, item)
        out.owner_leads += lead.owner is not None
        first = state.offered(lead.meeting, now, now, 1 if lead.start else pick_from)
        if first:
            out.waits.append((first[0] - now).total_seconds() / 60)
        hosts, start = route(state, out, lead, now, first)
        out.assignments.append(hosts)
        if hosts:
            held[i] = Held(hosts, start, dict.fromkeys(hosts, now))
            for move in lead.moves:
                heapq.heappush(pending, (max(move.at, now), next(seq), ("move", i, move)))
            if lead.cancelled_at is not None:
                heapq.heappush(pending, (max(lead.cancelled_at, now), next(seq), ("cancel", i)))
            if not policy.count_no_shows:
                for at, counts in lead.no_shows:
                    heapq.heappush(pending, (max(at, now), next(seq), ("no_show", i, counts)))
        if progress:
            progress(i + 1)
    # what is recorded after the last lead and before the period's end still happens: reschedules change who
    # holds a booking, cancellations and assignments without a booking are counted (a booking decided
    # before the period and cancelled at its end or later stays busy through it)
    while pending and (policy.end is None or pending[0][0] < policy.end):
        at, _seq, item = heapq.heappop(pending)
        apply(at, item)
    for i, lead in enumerate(leads):
        hosts = held[i].hosts if i in held else ()
        out.assignments[i] = hosts
        for rep_id in hosts:
            out.counts[rep_id] = out.counts.get(rep_id, 0) + 1
        if hosts and lead.recorded_hosts and sorted(hosts) == sorted(lead.recorded_hosts):
            out.reproduced += 1
    return out
