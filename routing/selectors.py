"""Read side of routing: load database rows into ``routing.core`` types.

Fairness period (``Pool.fairness_period``), all boundaries in **UTC** (one rule for a team spread over
zones; documented in docs/booking-api.md):

* ``day``: since 00:00 UTC today; ``week``: since Monday 00:00 UTC; ``month``: since the 1st, 00:00 UTC;
* ``rolling_30d``: the last 30 × 24 hours; ``never``: everything (no start).

A member's ``count`` = the pool's bookings the rep hosts (host rows not reassigned away; a non-counting
override, ``routing.overrides``, leaves the credit where it was) whose host row was
assigned in the current period and whose booking is confirmed or completed — plus cancelled ones if
``pool.count_cancellations`` and no-shows if ``pool.count_no_shows`` — plus the member's effective
adjustment: ``PoolMember.adjustment`` minus the "joined at mean load" deltas recorded before the period
started (so a joiner's head start expires with the period it was computed for; manual adjustments stay).
``last_assigned`` is the latest assignment of the rep in this pool, of any period.

``load_pool_state`` runs a constant number of queries whatever the number of members (9 today).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q, Sum

from calendars.models import BusyInterval, DateOverride, TimeOff, WorkingHours
from calendars.selectors import withheld_rep_ids
from routing.core import Interval, MeetingSpec, MemberState, PoolSpec, RepSchedule
from routing.models import LedgerEntry, Pool, PoolMember

# The schedule is loaded this much wider than the asked window on each side: local dates (caps, overrides)
# reach up to 14 hours from UTC, and buffers up to 4 hours.
MARGIN = timedelta(days=2)


def fairness_period_start(pool: Pool, *, now: datetime) -> datetime | None:
    """Start (UTC, inclusive) of the pool's current fairness period; ``None`` for ``never``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    period = pool.fairness_period
    if period == Pool.FairnessPeriod.DAY:
        return midnight
    if period == Pool.FairnessPeriod.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if period == Pool.FairnessPeriod.MONTH:
        return midnight.replace(day=1)
    if period == Pool.FairnessPeriod.ROLLING_30D:
        return now - timedelta(days=30)
    return None


def counted_statuses(pool: Pool) -> list[str]:
    """Booking statuses that count towards a member's load in ``pool``."""
    statuses = ["confirmed", "completed"]
    if pool.count_cancellations:
        statuses.append("cancelled")
    if pool.count_no_shows:
        statuses.append("no_show")
    return statuses


@dataclass(frozen=True)
class Ledger:
    """Per-rep fairness figures of one pool: raw counted bookings, effective adjustment, last assignment."""

    raw: dict[int, float]
    expired_joined: dict[int, float]
    last_assigned: dict[int, datetime]


@dataclass(frozen=True)
class OverrideHost:
    """A host row of a booking moved by a non-counting override, and whether it counts for fairness."""

    booking_id: int
    rep_id: int
    assigned_at: datetime
    status: str
    moved: bool  # released by the reassignment
    counts: bool


def override_hosts(pool: Pool, rep_ids: list[int]) -> list[OverrideHost]:
    """Host rows of bookings moved by a non-counting override (``routing.overrides``: ledger entries with
    delta 0): the host row the booking left keeps counting, the one it went to does not. Read from the few
    reassignment entries of the pool (index ``ledger_pool_kind``), never per host row. Shared by
    ``pool_ledger`` and the simulator's ledger history."""
    from booking.models import BookingHost

    moves = (LedgerEntry.Kind.REASSIGNED_FROM, LedgerEntry.Kind.REASSIGNED_TO)
    zero = set(
        LedgerEntry.objects.filter(
            pool_id=pool.pk, rep_id__in=rep_ids, kind__in=moves, delta=0.0
        ).values_list("booking_id", flat=True)
    )
    zero.discard(None)
    if not zero:
        return []
    latest: dict[tuple, float] = {}  # (booking, rep, kind) → delta of the latest such entry
    for booking_id, rep_id, kind, delta in (
        LedgerEntry.objects.filter(pool_id=pool.pk, booking_id__in=zero, kind__in=moves)
        .order_by("pk")
        .values_list("booking_id", "rep_id", "kind", "delta")
    ):
        latest[(booking_id, rep_id, kind)] = delta
    rows = []
    for booking_id, rep_id, released, assigned_at, status in BookingHost.objects.filter(
        booking_id__in=zero, rep_id__in=rep_ids
    ).values_list("booking_id", "rep_id", "released", "assigned_at", "booking__status"):
        moved = released == BookingHost.Released.REASSIGNED
        got = latest.get((booking_id, rep_id, LedgerEntry.Kind.REASSIGNED_TO)) == 0.0
        kept = latest.get((booking_id, rep_id, LedgerEntry.Kind.REASSIGNED_FROM)) == 0.0
        counts = (not moved and not (got and not kept)) or (moved and kept and not got)
        rows.append(OverrideHost(booking_id, rep_id, assigned_at, status, moved, counts))
    return rows


def _override_corrections(pool: Pool, rep_ids: list[int], *, start: datetime | None) -> dict[int, int]:
    """Count corrections against the plain rule (a host counts unless moved) for ``override_hosts``."""
    statuses = set(counted_statuses(pool))
    corrections: dict[int, int] = {}
    for row in override_hosts(pool, rep_ids):
        if row.status not in statuses or (start is not None and row.assigned_at < start):
            continue
        change = int(row.counts) - int(not row.moved)
        if change:
            corrections[row.rep_id] = corrections.get(row.rep_id, 0) + change
    return corrections


def pool_ledger(pool: Pool, rep_ids: list[int], *, now: datetime) -> Ledger:
    """Two queries: host-row aggregates and ledger-only entries (expired "joined" deltas, instant
    assignments without a booking, non-counting overrides); three more only if a member has such overrides."""
    from booking.models import BookingHost

    start = fairness_period_start(pool, now=now)
    # A reassigned host no longer counts, unless the override did not count (``_override_corrections``).
    # One pass over the pool's host rows: the last assignment may lie in any earlier period.
    counted = Q(booking__status__in=counted_statuses(pool))
    if start is not None:
        counted &= Q(assigned_at__gte=start)
    rows = (
        BookingHost.objects.filter(booking__pool_id=pool.pk, rep_id__in=rep_ids)
        .exclude(released=BookingHost.Released.REASSIGNED)
        .values("rep_id")
        .annotate(n=Count("id", filter=counted), last=Max("assigned_at"))
    )
    raw, last = {}, {}
    for row in rows:
        raw[row["rep_id"]] = row["n"]
        if row["last"] is not None:
            last[row["rep_id"]] = row["last"]
    # Ledger-only rows in one query: "joined" deltas that expired with an earlier period, assignments
    # without a booking (``POST /api/v1/route`` hands a lead to a rep now), which count like bookings, and
    # whether any member has a non-counting override (then ``_override_corrections`` reads them).
    instant = Q(kind=LedgerEntry.Kind.ASSIGNED, booking__isnull=True)
    overrides = Q(kind__in=(LedgerEntry.Kind.REASSIGNED_FROM, LedgerEntry.Kind.REASSIGNED_TO), delta=0.0)
    wanted = instant | overrides
    sums = {
        "instant": Sum("delta", filter=instant),
        "last": Max("created_at", filter=instant),
        "overrides": Count("id", filter=overrides),
    }
    if start is not None:
        joined = Q(kind=LedgerEntry.Kind.JOINED, created_at__lt=start)
        wanted |= joined
        sums["expired"] = Sum("delta", filter=joined)
        sums["instant"] = Sum("delta", filter=instant & Q(created_at__gte=start))
    entries = (
        LedgerEntry.objects.filter(Q(pool_id=pool.pk, rep_id__in=rep_ids) & wanted)
        .values("rep_id")
        .annotate(**sums)
    )
    expired: dict[int, float] = {}
    with_overrides = False
    for row in entries:
        rep_id = row["rep_id"]
        with_overrides = with_overrides or bool(row["overrides"])
        if row.get("expired"):
            expired[rep_id] = row["expired"]
        if row["instant"]:
            raw[rep_id] = raw.get(rep_id, 0) + row["instant"]
        if row["last"] is not None and (rep_id not in last or row["last"] > last[rep_id]):
            last[rep_id] = row["last"]
    if with_overrides:
        for rep_id, change in _override_corrections(pool, rep_ids, start=start).items():
            raw[rep_id] = raw.get(rep_id, 0) + change
    return Ledger(raw=raw, expired_joined=expired, last_assigned=last)


def member_count(member: PoolMember, ledger: Ledger) -> float:
    """The member's fairness count (see module docstring)."""
    rep_id = member.rep_id
    return ledger.raw.get(rep_id, 0) + member.adjustment - ledger.expired_joined.get(rep_id, 0.0)


def meeting_spec(meeting_type) -> MeetingSpec:
    return MeetingSpec(
        duration_minutes=meeting_type.duration_minutes,
        slot_interval_minutes=meeting_type.slot_interval_minutes,
        buffer_before_minutes=meeting_type.buffer_before_minutes,
        buffer_after_minutes=meeting_type.buffer_after_minutes,
        minimum_notice_minutes=meeting_type.minimum_notice_minutes,
        horizon_days=meeting_type.horizon_days,
    )


@dataclass(frozen=True)
class PoolState:
    """A loaded pool: the core's ``PoolSpec`` plus what the booking side needs around it."""

    spec: PoolSpec
    withheld: frozenset[int]
    members: dict[int, PoolMember]  # rep id → member row (rep selected)


def _local_ranges(rows) -> tuple:
    return tuple(sorted((start, end) for start, end in rows))


def load_pool_state(
    pool: Pool,
    meeting_type=None,
    *,
    now: datetime,
    window: Interval,
    exclude_booking_id: int | None = None,
) -> PoolState:
    """Every member of ``pool`` as ``MemberState`` with its schedule around ``window`` (constant queries).

    Busy = synced/manual ``BusyInterval`` rows ∪ blocked ranges of active booking hosts of ANY meeting type
    (excluding ``exclude_booking_id``, the booking being rescheduled). Members whose rep is withheld by
    ``calendars.selectors.withheld_rep_ids`` are given as inactive (the core then never offers or assigns
    them; decision records list them under ``withheld``).
    """
    from booking.models import BookingHost

    members = list(PoolMember.objects.filter(pool_id=pool.pk).select_related("rep").order_by("pk"))
    rep_ids = sorted({m.rep_id for m in members})
    if not rep_ids:
        return PoolState(
            spec=PoolSpec(strategy=pool.strategy, members=(), group_order=pool.group_order),
            withheld=frozenset(),
            members={},
        )
    lo, hi = window.start - MARGIN, window.end + MARGIN
    # Busy rows matter only where a start in ``window`` can overlap them: [s − before, s + d + after).
    # They are the bulk of the rows, so with a meeting type they are loaded for exactly that range.
    busy_lo, busy_hi = lo, hi
    if meeting_type is not None:
        hi += timedelta(minutes=meeting_type.duration_minutes)
        busy_lo = window.start - timedelta(minutes=meeting_type.buffer_before_minutes)
        busy_hi = window.end + timedelta(
            minutes=meeting_type.duration_minutes + meeting_type.buffer_after_minutes
        )
    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    # Explicit orderings throughout: the models' default ordering ("rep" → the rep's name) would join and
    # sort by routing_rep on every query of this hot path (slot pages, every booking).
    for rep_id, weekday, start, end in (
        WorkingHours.objects.filter(rep_id__in=rep_ids)
        .order_by()
        .values_list("rep_id", "weekday", "start", "end")
    ):
        weekly[rep_id][weekday].append((start, end))
    overrides: dict[int, dict] = defaultdict(lambda: defaultdict(list))
    days_off: set[tuple[int, object]] = set()
    for rep_id, day, start, end in (
        DateOverride.objects.filter(rep_id__in=rep_ids, date__gte=lo.date(), date__lte=hi.date())
        .order_by()
        .values_list("rep_id", "date", "start", "end")
    ):
        overrides[rep_id][day]  # a day off leaves an empty list
        if start is None:
            days_off.add((rep_id, day))
        else:
            overrides[rep_id][day].append((start, end))
    time_off: dict[int, list[Interval]] = defaultdict(list)
    for rep_id, start, end in (
        TimeOff.objects.filter(rep_id__in=rep_ids, end__gt=lo, start__lt=hi)
        .order_by("rep_id", "start")
        .values_list("rep_id", "start", "end")
    ):
        time_off[rep_id].append(Interval(start, end))
    busy: dict[int, list[Interval]] = defaultdict(list)
    for rep_id, start, end in (
        BusyInterval.objects.filter(rep_id__in=rep_ids, end__gt=busy_lo, start__lt=busy_hi)
        .order_by("rep_id", "start")
        .values_list("rep_id", "start", "end")
    ):
        busy[rep_id].append(Interval(start, end))
    hosts = BookingHost.objects.filter(
        rep_id__in=rep_ids, active=True, blocked_end__gt=lo, blocked_start__lt=hi
    ).order_by("rep_id", "blocked_start")
    if exclude_booking_id is not None:
        hosts = hosts.exclude(booking_id=exclude_booking_id)
    zones = {m.rep_id: ZoneInfo(m.rep.timezone) for m in members}
    per_date: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    pool_per_date: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for rep_id, start, end, booking_start, booking_pool in hosts.values_list(
        "rep_id", "blocked_start", "blocked_end", "booking__start", "booking__pool_id"
    ):
        busy[rep_id].append(Interval(start, end))
        local_date = booking_start.astimezone(zones[rep_id]).date()
        per_date[rep_id][local_date] += 1
        if booking_pool == pool.pk:
            pool_per_date[rep_id][local_date] += 1
    ledger = pool_ledger(pool, rep_ids, now=now)
    withheld = frozenset(withheld_rep_ids(rep_ids, now=now))

    states, by_rep = [], {}
    for member in members:
        rep, rid = member.rep, member.rep_id
        schedule = RepSchedule(
            rep_id=rid,
            timezone=rep.timezone,
            weekly_hours={day: _local_ranges(ranges) for day, ranges in weekly[rid].items()},
            date_overrides={
                day: () if (rid, day) in days_off else _local_ranges(ranges)
                for day, ranges in overrides[rid].items()
            },
            time_off=tuple(time_off[rid]),
            busy=tuple(busy[rid]),
            active=rep.active and rid not in withheld,
            daily_cap=rep.daily_cap,
            meetings_per_local_date=dict(per_date[rid]),
            name=rep.name,
        )
        states.append(
            MemberState(
                rep=schedule,
                rank=member.rank,
                weight=member.weight,
                role=member.role,
                active=member.active,
                daily_cap=member.daily_cap,
                pool_meetings_per_local_date=dict(pool_per_date[rid]),
                count=member_count(member, ledger),
                last_assigned=ledger.last_assigned.get(rid),
            )
        )
        by_rep[rid] = member
    spec = PoolSpec(strategy=pool.strategy, members=tuple(states), group_order=pool.group_order)
    return PoolState(spec=spec, withheld=withheld, members=by_rep)


def load_pool(pool: Pool, meeting_type, *, now: datetime, window: Interval) -> PoolSpec:
    """The pool as the routing core sees it around ``window`` (see ``load_pool_state``)."""
    return load_pool_state(pool, meeting_type, now=now, window=window).spec
