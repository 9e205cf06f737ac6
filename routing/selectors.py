"""Read side of routing: load database rows into ``routing.core`` types.

A pool is loaded in two phases, so that booking paths hold the reps' booking locks only for the second:

1. ``load_pool_calendars``: the members and everything about their time that the booking lock does not
   guard (working hours, date overrides, time off, synced busy rows, calendar health), built into each rep's
   ``RepSchedule``. Sync, admin edits and time-off entries never take the lock, so reading them before it is
   no weaker than reading them after.
2. ``load_pool_bookings``: what bookings change, which the lock does guard: the members' active booking
   host rows around the window and the pool's fairness ledger (``routing.ledger``).

``load_pool_state`` runs both; each phase is a constant number of queries whatever the number of members
(on PostgreSQL phase one is one round trip when the pool's roster, its members and weekly hours, is kept
and current: ``routing.rosters``; phase two one or two statements and the ledger's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from calendars.selectors import CalendarHealth, health_query
from routing import rosters, sqlrows
from routing.core import Interval, MeetingSpec, MemberState, PoolSpec, RepSchedule, interval
from routing.ledger import ledger_query, member_count
from routing.models import Pool, PoolMember
from routing.poolrows import (  # the statements (tests read them from here too)
    HOSTS_BUSY_SQL,
    HOSTS_COUNTED_SQL,
    HOSTS_SQL,
    INTERVALS_SQL,
    OVERRIDES_SQL,
    PROBE_SQL,
    host_overlap,
    near,
    overlap,
)

# The schedule is loaded this much wider than the asked window on each side: local dates (caps, overrides)
# reach up to 14 hours from UTC, and buffers up to 4 hours.
MARGIN = timedelta(days=2)


# The routing core's frozen dataclasses put together directly, their slots set as ``routing.core.interval``
# does: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, and
# ``dataclasses.replace`` also walks the fields and passes them all by keyword. A booking on a 50-rep pool
# makes 50 ``MemberState`` under its rep locks (2.9 against 0.9 µs each) and copies some two dozen
# schedules (4.1–4.9 against 2.1–2.4 µs each; 2026-12-07). The objects are the same (equal, same slots).
_new = object.__new__
_MEMBER_FIELDS = (
    "rep",
    "rank",
    "weight",
    "role",
    "active",
    "daily_cap",
    "pool_meetings_per_local_date",
    "count",
    "last_assigned",
)
_SCHEDULE_SLOTS = tuple((f.name, getattr(RepSchedule, f.name)) for f in fields(RepSchedule))
# every field set (a field added to the core must be added here), and no ``__post_init__`` skipped
if tuple(f.name for f in fields(MemberState)) != _MEMBER_FIELDS:
    raise ImportError("routing.selectors: MemberState's fields changed; update _MEMBER_FIELDS")
if hasattr(MemberState, "__post_init__") or hasattr(RepSchedule, "__post_init__"):
    raise ImportError("routing.selectors: MemberState/RepSchedule have a __post_init__ to run")
_SET_MEMBER = tuple(getattr(MemberState, name).__set__ for name in _MEMBER_FIELDS)


def member_state(
    rep, rank, weight, role, active, daily_cap, pool_per_date, count, last_assigned
) -> MemberState:
    """``MemberState(rep=…, rank=…, …)`` with every field, in the order of its fields."""
    made = _new(MemberState)
    s_rep, s_rank, s_weight, s_role, s_active, s_cap, s_pool, s_count, s_last = _SET_MEMBER
    s_rep(made, rep)
    s_rank(made, rank)
    s_weight(made, weight)
    s_role(made, role)
    s_active(made, active)
    s_cap(made, daily_cap)
    s_pool(made, pool_per_date)
    s_count(made, count)
    s_last(made, last_assigned)
    return made


def schedule_with(schedule: RepSchedule, **changes) -> RepSchedule:
    """``dataclasses.replace(schedule, **changes)`` for a ``RepSchedule``."""
    made = _new(RepSchedule)
    for name, slot in _SCHEDULE_SLOTS:
        slot.__set__(made, changes.pop(name) if name in changes else slot.__get__(schedule))
    if changes:
        raise TypeError(f"RepSchedule has no field {next(iter(changes))!r}")
    return made


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
    live: frozenset[int] = frozenset()  # reps with a calendar to ask live (``calendar_health``)


@dataclass(frozen=True)
class PoolCalendars:
    """Phase one of loading a pool (see the module docstring). Treat as read-only."""

    pool: Pool
    members: tuple[PoolMember, ...]  # ordered by pk, rep selected
    lo: datetime  # host rows are counted over [lo, hi) (daily caps)
    hi: datetime
    busy_lo: datetime  # and are busy time over [busy_lo, busy_hi) (what a start in the window can overlap)
    busy_hi: datetime
    counted: frozenset[int] | None  # the reps whose meetings per local date are counted; None: all
    time_off: dict[int, list[Interval]]
    busy: dict[int, list[Interval]]
    withheld: frozenset[int]
    live: frozenset[int]
    # per rep: the schedule from the rows above, built before the booking lock; phase two adds the host rows
    schedules: dict[int, RepSchedule]
    booked: frozenset[int] = frozenset()  # with a probe range: members with an active booking overlapping it
    ids: tuple[int, ...] = ()  # the members' rep ids, sorted

    @property
    def rep_ids(self) -> list[int]:
        return list(self.ids)


def _local_ranges(rows) -> tuple:
    return tuple(sorted((start, end) for start, end in rows))


def load_pool_calendars(
    pool: Pool,
    meeting_type=None,
    *,
    now: datetime,
    window: Interval,
    probe: tuple[datetime, datetime] | None = None,
) -> PoolCalendars:
    """Phase one for starts in ``window``. The members and their weekly hours are the pool's roster
    (``routing.rosters``): on PostgreSQL the one kept from an earlier request when its version, read in this
    round trip, is still current; else read and built first. Then one round trip on PostgreSQL: calendar
    health, date overrides, time off and busy rows (none without members). With ``probe`` (a booking's
    buffered range), ``booked`` holds the members with an active booking overlapping it, read in the same
    statements."""
    roster = rosters.kept(pool)
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
    if roster is not None:  # kept: its version goes with the reads, which use it if it is current
        found = _phase_one(roster, now, lo, hi, busy_lo, busy_hi, probe, version=pool)
        if not rosters.current(roster, found.pop(0)):
            roster = found = None
    if roster is None:
        roster = rosters.build(pool)
        found = _phase_one(roster, now, lo, hi, busy_lo, busy_hi, probe)
    members, rep_ids = roster.members, roster.rep_ids
    overrides: dict[int, dict] = defaultdict(lambda: defaultdict(list))
    days_off: set[tuple[int, object]] = set()
    time_off: dict[int, list[Interval]] = defaultdict(list)
    busy: dict[int, list[Interval]] = defaultdict(list)
    booked: set[int] = set()
    health = CalendarHealth(frozenset(), frozenset())
    # Only daily caps read meetings per local date; without a meeting type (the simulator, which may try
    # caps that are not configured) every rep is counted.
    counted = roster.capped if meeting_type is not None else None
    if rep_ids:
        health, found_overrides, found_intervals = found
        for rep_id, day, start, end in found_overrides:
            overrides[rep_id][day]  # a day off leaves an empty list
            if start is None:
                days_off.add((rep_id, day))
            else:
                overrides[rep_id][day].append((start, end))
        read_ts = sqlrows.timestamps()
        for kind, rep_id, start, end in found_intervals:
            if kind == 2:
                booked.add(rep_id)
                continue
            (busy if kind else time_off)[rep_id].append(interval(read_ts(start), read_ts(end)))
    withheld, schedules = health.withheld, {}
    for rid, schedule in roster.schedules.items():  # the roster's, where nothing is added to it that day
        if rid in overrides or rid in time_off or rid in busy or rid in withheld:
            schedule = schedule_with(
                schedule,
                date_overrides={
                    day: () if (rid, day) in days_off else _local_ranges(ranges)
                    for day, ranges in overrides.get(rid, {}).items()
                },
                time_off=tuple(time_off.get(rid, ())),
                busy=tuple(busy.get(rid, ())),
                active=schedule.active and rid not in withheld,
            )
        schedules[rid] = schedule
    return PoolCalendars(
        pool,
        members,
        lo,
        hi,
        busy_lo,
        busy_hi,
        counted,
        time_off,
        busy,
        withheld,
        health.live,
        schedules,
        frozenset(booked),
        rep_ids,
    )


def _phase_one(roster, now, lo, hi, busy_lo, busy_hi, probe, *, version: Pool | None = None) -> list:
    """Phase one's reads for ``roster``'s reps in one round trip (``sqlrows.batch``), led by the roster's
    version statement when ``version`` (the pool) is given: [version rows,] then the calendar health, the
    override rows and the interval rows (nothing else without reps)."""
    statements = [rosters.version_statement(version)] if version is not None else []
    if not roster.rep_ids:
        return sqlrows.batch(statements) if statements else []
    reps, listed = sqlrows.among(roster.rep_ids)
    check = health_query(list(roster.rep_ids), now=now)
    overrides = (OVERRIDES_SQL.format(reps=reps), [*listed, sqlrows.on(lo.date()), sqlrows.on(hi.date())])
    params = [*listed, sqlrows.at(lo), sqlrows.at(hi), *listed, sqlrows.at(busy_lo), sqlrows.at(busy_hi)]
    if probe is not None:
        params += [*listed, sqlrows.at(probe[0]), sqlrows.at(probe[1])]
    probe_sql = PROBE_SQL.format(near=near(reps), overlap=host_overlap("p")) if probe else ""
    busy_overlap = overlap("start", '"end"')
    sql = INTERVALS_SQL.format(reps=reps, near=near(reps), busy_overlap=busy_overlap, probe=probe_sql)
    intervals = (sql, params)
    *found_version, found_health, found_overrides, found_intervals = sqlrows.batch(
        [*statements, (check.sql, check.params), overrides, intervals]
    )
    day = sqlrows.day
    dated = [(rep_id, day(d), start, end) for rep_id, d, start, end in found_overrides]
    return [*found_version, check.read(found_health), dated, found_intervals]


def load_pool_bookings(
    calendars: PoolCalendars,
    *,
    now: datetime,
    exclude_booking_id: int | None = None,
    taken: tuple[datetime, datetime] | None = None,
) -> PoolState | None:
    """Phase two: two or three queries (host rows, those of capped reps for their meetings per local date
    when there are any, then the ledger's one), none if the pool has no members, sent together in one round
    trip on PostgreSQL (``sqlrows.batch``). ``pool_bookings_query`` gives them to a caller that sends them
    with statements of its own (a booking's rep locks: ``booking.services.locking.load_locked``).

    ``taken`` (a booking's buffered range, inside the window): None when the host rows show every member
    hosting an active booking that overlaps it, before any of the rest is looked at. A booking that waited
    for its locks while another took the slot fails this way, before the routing core.

    Busy = the synced/manual rows of phase one ∪ blocked ranges of active booking hosts of ANY meeting type
    (excluding ``exclude_booking_id``, the booking being rescheduled). Withheld members
    (``calendars.selectors.calendar_health``) are given as inactive (the core then never offers or assigns
    them; decision records list them under ``withheld``).
    """
    query = pool_bookings_query(calendars, now=now, exclude_booking_id=exclude_booking_id, taken=taken)
    return query.read(sqlrows.batch(query.statements))


@dataclass(frozen=True)
class PoolBookingsQuery:
    """``load_pool_bookings``' statements, for a caller that sends them with others (``sqlrows.batch``,
    queued behind a booking's rep locks: they then see what committed while the locks waited), and how to
    read their rows (``read`` takes the results of exactly these statements)."""

    statements: list[tuple[str, list]]
    read: Callable[[Sequence[list[tuple]]], PoolState | None]


def pool_bookings_query(
    calendars: PoolCalendars,
    *,
    now: datetime,
    exclude_booking_id: int | None = None,
    taken: tuple[datetime, datetime] | None = None,
) -> PoolBookingsQuery:
    """``load_pool_bookings`` in two steps: the statements, then ``read`` of their rows."""
    pool, rep_ids = calendars.pool, calendars.rep_ids
    if not rep_ids:
        spec = PoolSpec(strategy=pool.strategy, members=(), group_order=pool.group_order)
        empty = PoolState(spec=spec, withheld=frozenset(), members={})
        return PoolBookingsQuery([], lambda results: empty)
    exclude = " AND h.booking_id <> %s" if exclude_booking_id is not None else ""
    excluded = [exclude_booking_id] if exclude_booking_id is not None else []
    reps, listed = sqlrows.among(rep_ids)
    wide = [sqlrows.at(calendars.lo), sqlrows.at(calendars.hi)]
    nearby = host_overlap()
    statements = []
    window = (calendars.lo, calendars.hi)
    whole = calendars.counted is None and (calendars.busy_lo, calendars.busy_hi) == window
    if whole:  # busy and counted at once (every host row of the window matters)
        sql = HOSTS_SQL.format(near=near(reps), overlap=nearby, exclude=exclude)
        statements.append((sql, [*listed, *wide, *excluded]))
    else:  # a booking or a slot page: the busy rows near its starts, counts only where a cap reads them
        narrow = [sqlrows.at(calendars.busy_lo), sqlrows.at(calendars.busy_hi)]
        sql = HOSTS_BUSY_SQL.format(near=near(reps), overlap=nearby, exclude=exclude)
        statements.append((sql, [*listed, *narrow, *excluded]))
        counted = rep_ids if calendars.counted is None else sorted(calendars.counted)
        if counted:
            capped, capped_listed = sqlrows.among(counted)
            sql = HOSTS_COUNTED_SQL.format(near=near(capped), overlap=nearby, exclude=exclude)
            statements.append((sql, [*capped_listed, *wide, *excluded]))
    ledger = ledger_query(pool, rep_ids, now=now)
    statements.append((ledger.sql, ledger.params))

    def read(results: Sequence[list[tuple]]) -> PoolState | None:
        hosts, *counts, ledger_rows = results
        counted = counts[0] if counts else ()
        return _pool_state(calendars, hosts, counted, ledger.read(ledger_rows), whole, taken)

    return PoolBookingsQuery(statements, read)


def _pool_state(calendars: PoolCalendars, hosts, counts, ledger, whole: bool, taken) -> PoolState | None:
    pool, members, rep_ids, schedules = calendars.pool, calendars.members, calendars.ids, calendars.schedules
    read_ts = sqlrows.timestamps()
    booked: dict[int, list[Interval]] = defaultdict(list)
    per_date: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    pool_per_date: dict[int, dict] = defaultdict(lambda: defaultdict(int))

    def count(rep_id: int, booking_start, booking_pool: int) -> None:
        zone = ZoneInfo(schedules[rep_id].timezone)  # zoneinfo keeps each zone: a lookup
        local_date = read_ts(booking_start).astimezone(zone).date()
        per_date[rep_id][local_date] += 1
        if booking_pool == pool.pk:
            pool_per_date[rep_id][local_date] += 1

    if whole:
        for rep_id, start, end, booking_start, booking_pool in hosts:
            booked[rep_id].append(interval(read_ts(start), read_ts(end)))
            count(rep_id, booking_start, booking_pool)
    else:
        for rep_id, start, end in hosts:
            booked[rep_id].append(interval(read_ts(start), read_ts(end)))
        if taken is not None and all(
            any(i.start < taken[1] and taken[0] < i.end for i in booked.get(rid, ())) for rid in rep_ids
        ):
            return None
        for rep_id, booking_start, booking_pool in counts:
            count(rep_id, booking_start, booking_pool)
    withheld = calendars.withheld

    states, by_rep = [], {}
    last_assigned = ledger.last_assigned.get
    for member in members:
        rid = member.rep_id
        schedule = schedules[rid]
        if rid in booked or rid in per_date:  # else phase one's schedule as it is (most reps, 50-rep pools)
            schedule = schedule_with(
                schedule,
                busy=schedule.busy + tuple(booked.get(rid, ())),
                meetings_per_local_date=dict(per_date.get(rid, {})),
            )
        states.append(
            member_state(
                schedule,
                member.rank,
                member.weight,
                member.role,
                member.active,
                member.daily_cap,
                dict(pool_per_date[rid]) if rid in pool_per_date else {},
                member_count(member, ledger, rid),
                last_assigned(rid),
            )
        )
        by_rep[rid] = member
    spec = PoolSpec(strategy=pool.strategy, members=tuple(states), group_order=pool.group_order)
    return PoolState(spec=spec, withheld=withheld, members=by_rep, live=calendars.live)


def load_pool_state(
    pool: Pool,
    meeting_type=None,
    *,
    now: datetime,
    window: Interval,
    exclude_booking_id: int | None = None,
) -> PoolState:
    """Every member of ``pool`` as ``MemberState`` with its schedule around ``window``: both phases."""
    calendars = load_pool_calendars(pool, meeting_type, now=now, window=window)
    return load_pool_bookings(calendars, now=now, exclude_booking_id=exclude_booking_id)


def load_pool(pool: Pool, meeting_type, *, now: datetime, window: Interval) -> PoolSpec:
    """The pool as the routing core sees it around ``window`` (see ``load_pool_state``)."""
    return load_pool_state(pool, meeting_type, now=now, window=window).spec
