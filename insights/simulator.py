"""The routing simulator: replay a stream of leads through the SAME routing core as live booking.

Nothing here touches the database. ``insights.selectors`` loads a ``Policy`` (the pool's members as the
core sees them, with the replayed bookings taken out of their calendars) and a list of ``Lead``; ``simulate``
walks the leads in time order, keeping the fairness ledger, the busy times and the daily-cap counters in
memory, and for each lead calls ``routing.core.offered_slots`` (first offered slot → wait) and
``routing.core.assign`` (who gets it) exactly as ``booking.services.routing.choose_hosts`` does — within
the lead's recorded route (``leads.tokens.Route.restrict``, as ``booking.services.create`` applies it).
Recorded cancellations free their slot at their cancellation instant (and leave the ledger unless the pool
counts cancellations). Types and the outcome summary are in ``insights.sim_types``.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.services.routing import without
from insights.sim_types import Lead, Outcome, Policy, PriorBooking, synthetic_leads, target_shares
from routing.core import (
    Interval,
    MeetingSpec,
    MemberState,
    NoHostAvailable,
    PoolSpec,
    RepSchedule,
    assign,
    free_starts,
    offered_slots,
)
from routing.selectors import fairness_period_start

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
        self.reps: dict[int, _Rep] = {}
        self.cursor: dict[MeetingSpec, datetime] = {}
        self._ledger: tuple[datetime | None, dict] = (None, {})
        self.free_cache: dict[tuple[int, MeetingSpec], tuple] = {}
        for m in policy.members:
            ivs = sorted(m.rep.busy, key=lambda iv: (iv.start, iv.end))
            self.reps[m.rep_id] = _Rep(
                member=m,
                keys=[(iv.start, iv.end) for iv in ivs],
                ivs=ivs,
                longest=max((iv.end - iv.start for iv in ivs), default=timedelta(0)),
                per_date=dict(m.rep.meetings_per_local_date),
                pool_per_date=dict(m.pool_meetings_per_local_date),
                events=sorted(policy.ledger_events.get(m.rep_id, [])),
                zone=ZoneInfo(m.rep.timezone),
                last=policy.last_assigned.get(m.rep_id),
            )
        for prior in policy.prior_cancelled:
            rep = self.reps.get(prior.rep_id)
            if rep is not None:
                self._block(rep, prior.blocked, prior.start)
                if not policy.count_cancellations:  # counted until cancelled
                    bisect.insort(rep.events, prior.assigned_at)

    def _counts(self, now: datetime) -> dict[int, float]:
        if self._ledger[0] == now:
            return self._ledger[1]
        start = fairness_period_start(self.period, now=now)
        counts = {}
        for rid, rep in self.reps.items():
            raw = (
                len(rep.events) if start is None else len(rep.events) - bisect.bisect_left(rep.events, start)
            )
            expired = 0.0
            if start is not None:
                expired = sum(d for at, d in self.policy.joined.get(rid, ()) if at < start)
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
            before, length = _reach(meeting)
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
        members = [self.member(rep, now, lo, hi) for rep in reps]
        return PoolSpec(
            strategy=self.policy.strategy, members=tuple(members), group_order=self.policy.group_order
        )

    @staticmethod
    def _block(rep: _Rep, key: tuple[datetime, datetime], start: datetime) -> None:
        i = bisect.bisect_left(rep.keys, key)
        rep.keys.insert(i, key)
        rep.ivs.insert(i, Interval(*key))
        rep.longest = max(rep.longest, key[1] - key[0])
        day = start.astimezone(rep.zone).date()
        rep.per_date[day] = rep.per_date.get(day, 0) + 1
        rep.pool_per_date[day] = rep.pool_per_date.get(day, 0) + 1

    def book(self, rep_id: int, meeting: MeetingSpec, start: datetime, now: datetime) -> None:
        rep = self.reps[rep_id]
        self._block(rep, blocked(meeting, start), start)
        bisect.insort(rep.events, now)
        rep.last = now if rep.last is None else max(rep.last, now)
        self._ledger = (None, {})
        rep.version += 1

    def release(
        self, rep_id: int, key: tuple[datetime, datetime], start: datetime, event: datetime | None
    ) -> None:
        """A cancellation: the blocked range ``key`` is free again and, if ``event`` is given (the pool does
        not count cancellations), that assignment leaves the fairness ledger."""
        rep = self.reps[rep_id]
        i = bisect.bisect_left(rep.keys, key)
        if i < len(rep.keys) and rep.keys[i] == key:
            del rep.keys[i], rep.ivs[i]
        day = start.astimezone(rep.zone).date()
        for counter in (rep.per_date, rep.pool_per_date):
            counter[day] = max(0, counter.get(day, 0) - 1)
        if event is not None:
            j = bisect.bisect_left(rep.events, event)
            if j < len(rep.events) and rep.events[j] == event:
                del rep.events[j]
        self._ledger = (None, {})
        rep.version += 1
        self.cursor.clear()  # the offer may grow again

    def offered(self, meeting: MeetingSpec, now: datetime, after: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` offered starts at or after ``after`` (searching small windows first)."""
        monotone = self.policy.strategy in MONOTONE
        from_now = after == now
        if monotone and meeting in self.cursor:
            after = max(after, self.cursor[meeting])
        before, length = _reach(meeting)
        found: list[datetime] = []
        lo = after
        end = now + timedelta(days=meeting.horizon_days)
        for days in SEARCH_STEPS:
            hi = min(after + timedelta(days=days), end)
            if hi > lo:
                only = None
                if self.policy.strategy in UNION:
                    only = [rid for rid in self.reps if self._maybe_free(rid, meeting, now, lo, hi)]
                spec = self.spec(now, lo - before, hi + length, only)
                found.extend(offered_slots(spec, meeting, now=now, window=Interval(lo, hi)))
                if len(found) >= limit:
                    break
            lo = hi
            if lo >= end:
                break
        if monotone and from_now and found:
            self.cursor[meeting] = found[0]
        return found[:limit]


def blocked(meeting: MeetingSpec, start: datetime) -> tuple[datetime, datetime]:
    return (
        start - timedelta(minutes=meeting.buffer_before_minutes),
        start + timedelta(minutes=meeting.duration_minutes + meeting.buffer_after_minutes),
    )


def _reach(meeting: MeetingSpec) -> tuple[timedelta, timedelta]:
    """How far before / after a start a busy interval can matter: buffer before; meeting plus buffer after."""
    return (
        timedelta(minutes=meeting.buffer_before_minutes + 1),
        timedelta(minutes=meeting.duration_minutes + meeting.buffer_after_minutes + 1),
    )


def _cap_hit(record: dict) -> bool:
    return any(c.get("reason") == "cap" for c in record.get("candidates", ()))


def simulate(
    policy: Policy, leads: list[Lead], *, progress: Callable[[int], None] | None = None, pick_from: int = 5
) -> Outcome:
    """Route ``leads`` (sorted by ``at``) under ``policy``; returns the figures. Writes nothing."""
    state = _State(policy)
    out = Outcome(label=policy.label, strategy=policy.strategy, names=dict(policy.names))
    out.target = target_shares(policy)
    counted = policy.count_cancellations
    pending: list[tuple] = []  # heap of (cancelled_at, seq, rep_id, blocked range, start, ledger event)
    for seq, p in enumerate(policy.prior_cancelled):
        if p.rep_id in state.reps:
            heapq.heappush(
                pending,
                (p.cancelled_at, -1 - seq, p.rep_id, p.blocked, p.start, None if counted else p.assigned_at),
            )
    for i, lead in enumerate(leads):
        out.leads += 1
        now = lead.at.astimezone(UTC)
        while pending and pending[0][0] <= now:
            _at, _seq, rep_id, key, start, event = heapq.heappop(pending)
            state.release(rep_id, key, start, event)
            out.cancellations += 1
        out.owner_leads += lead.owner is not None
        first = state.offered(lead.meeting, now, now, 1 if lead.start else pick_from)
        if first:
            out.waits.append((first[0] - now).total_seconds() / 60)
        hosts, start = _route(state, out, lead, now, first)
        out.assignments.append(hosts)
        if hosts and lead.cancelled_at is not None:
            for rep_id in hosts:
                item = (max(lead.cancelled_at, now), i, rep_id, blocked(lead.meeting, start), start)
                heapq.heappush(pending, (*item, None if counted else now))
        for rep_id in hosts:
            out.counts[rep_id] = out.counts.get(rep_id, 0) + 1
        if hosts and lead.recorded_hosts and sorted(hosts) == sorted(lead.recorded_hosts):
            out.reproduced += 1
        if progress:
            progress(i + 1)
    return out


def _assign(spec: PoolSpec, lead: Lead, now: datetime, start: datetime):
    """``assign`` within the lead's recorded route (its candidates, ranks and weights, applied by the route's
    own ``restrict`` as live booking does); if the route's reps cannot take ``start`` under this policy, the
    whole pool (``True``: a fallback)."""
    if lead.route is None:
        return assign(spec, lead.meeting, now=now, start=start), False
    try:
        return assign(lead.route.restrict(spec), lead.meeting, now=now, start=start), False
    except NoHostAvailable:
        return assign(spec, lead.meeting, now=now, start=start), True


def _first_choice_busy(state: _State, lead: Lead, now: datetime, start: datetime) -> bool:
    """Would this policy's first choice have been one of the reps the providers reported busy live?"""
    before, length = _reach(lead.meeting)
    try:
        first, _ = _assign(state.spec(now, start - before, start + length), lead, now, start)
    except NoHostAvailable:
        return False
    return any(h.rep_id in lead.live_busy for h in first.hosts)


def _route(
    state: _State, out: Outcome, lead: Lead, now: datetime, first: list[datetime]
) -> tuple[tuple[int, ...], datetime | None]:
    """Hosts and start for ``lead``. A fallback is counted when the recorded routing rules fell back, the
    route's reps cannot take the start under this policy, or this policy's first choice was busy live."""
    if lead.start is None:
        if not first:
            out.no_slot += 1
            return (), None
        starts = [first[min(lead.pick, len(first) - 1)]]
    else:
        starts = [lead.start]
    for attempt in range(2):
        start = starts[0]
        before, length = _reach(lead.meeting)
        spec = without(state.spec(now, start - before, start + length), set(lead.live_busy))
        try:
            assignment, route_fallback = _assign(spec, lead, now, start)
        except NoHostAvailable as exc:
            if _cap_hit(exc.record):
                out.cap_hits += 1
            if attempt or lead.start is None:
                break
            starts = state.offered(lead.meeting, now, max(start, now), 1)
            if not starts:
                break
            out.moved += 1
            continue
        if _cap_hit(assignment.record):
            out.cap_hits += 1
        hosts = tuple(h.rep_id for h in assignment.hosts)
        if (
            lead.rules_fallback
            or route_fallback
            or (lead.live_busy and _first_choice_busy(state, lead, now, start))
        ):
            out.fallbacks += 1
        if lead.owner is not None and lead.owner in hosts:
            out.owner_matches += 1
        for rep_id in hosts:
            state.book(rep_id, lead.meeting, start, now)
        return hosts, start
    out.no_slot += 1
    return (), None
