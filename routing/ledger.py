"""The fairness ledger, read side: who has had how many of a pool's meetings in its fairness period.

Fairness period (``Pool.fairness_period``), all boundaries in **UTC** (one rule for a team spread over
zones; documented in docs/booking-api.md):

* ``day``: since 00:00 UTC today; ``week``: since Monday 00:00 UTC; ``month``: since the 1st, 00:00 UTC;
* ``rolling_30d``: the last 30 × 24 hours; ``never``: everything (no start).

A member's ``count`` = the pool's bookings the rep hosts (host rows not reassigned away; a non-counting
override, ``routing.overrides``, leaves the credit where it was) whose host row was
assigned in the current period and whose booking is confirmed or completed — plus cancelled ones if
``pool.count_cancellations`` and no-shows if ``pool.count_no_shows`` — plus the member's effective
adjustment: ``PoolMember.adjustment`` minus the "joined at mean load" deltas of the current membership
(recorded since ``PoolMember.joined_at``: a removed member's old deltas left with its row) that the period
has spent: in full when recorded before the period started (a joiner's head start expires with the period
it was computed for), and for ``rolling_30d`` in step with the window
(``routing.core.ledger.head_start_expired``); manual adjustments stay. The standing a member keeps across a
change of the pool's fairness settings or of its weight (``routing.services.pool_keep_standings``) is such
a "joined" delta too: like a head start, it is relative to the bookings of the period it was recorded in.
An assignment without a booking (an instant route, a lead routed by hand) counts like a booking assigned
at its entry's time, unless a later routing by hand took it back (``TAKEN_BACK``).
``last_assigned`` is the latest assignment of the rep in this pool, of any period.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from routing import sqlrows
from routing.credit import credit_holder
from routing.models import Pool, PoolMember


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
    """A host row of a booking moved by a non-counting override, and how many seats' fairness credit its
    rep holds (``routing.credit.credit_holder``: 0 or 1, more only if one rep holds the credit of two seats
    of a group booking)."""

    booking_id: int
    rep_id: int
    assigned_at: datetime
    status: str
    moved: bool  # released by a reassignment
    credits: int


# The host rows of bookings moved by a non-counting override, with the bookings' decision history, in one
# statement: such bookings are found among the pool's few reassignment entries (``ledger_pool_special``),
# never per host row. Every host row of such a booking is read (a seat's credit may be held by a rep the
# booking left, and a member's credit by a seat a rep outside ``rep_ids`` hosts).
OVERRIDE_HOSTS_SQL = """
SELECT h.booking_id, h.rep_id, h.released, h.assigned_at, b.status, {history}
FROM booking_bookinghost h INNER JOIN booking_booking b ON b.id = h.booking_id
WHERE h.booking_id IN (
  SELECT z.booking_id FROM routing_ledgerentry z
  WHERE z.pool_id = %s AND z.kind IN ('reassigned_from', 'reassigned_to') AND z.delta = 0.0
  AND z.rep_id {reps} AND z.booking_id IS NOT NULL
)
ORDER BY h.booking_id, h.id
"""
# ``Booking.decision["history"]`` as JSON text (not the whole decision: its routing record names every
# candidate)
HISTORY = {
    "postgresql": "(b.decision -> 'history')::text",
    "sqlite": "json_extract(b.decision, '$.history')",
}


def override_hosts(pool: Pool, rep_ids: list[int]) -> list[OverrideHost]:
    """The host rows of ``rep_ids`` on bookings moved by a non-counting override (``routing.overrides``:
    ledger entries with delta 0), each with the credits its rep holds: per seat (a host row not reassigned
    away), the rep its decision history names (``routing.credit.credit_holder``, as cancellations,
    reschedules and reassignments move the credit) — the seat's host, or the rep the booking left that kept
    the credit (its released row counts). One query (``OVERRIDE_HOSTS_SQL``; it runs under the booking
    locks whenever a member has had such an override). Shared by ``pool_ledger`` and the simulator's ledger
    history (``insights.ledger_start``)."""
    from booking.models import BookingHost

    if not rep_ids:
        return []
    reps, listed = sqlrows.among(rep_ids)
    history_sql = HISTORY.get(sqlrows.vendor(), HISTORY["postgresql"])
    found = sqlrows.rows(OVERRIDE_HOSTS_SQL.format(history=history_sql, reps=reps), [pool.pk, *listed])
    members, reassigned = set(rep_ids), BookingHost.Released.REASSIGNED
    by_booking: dict[int, list[tuple]] = {}
    for row in found:
        by_booking.setdefault(row[0], []).append(row)
    out = []
    for booking_id, rows in by_booking.items():
        history = json.loads(rows[0][5]) if rows[0][5] else []  # the booking's, on each of its rows
        history = history if isinstance(history, list) else []
        # a seat is a host row not reassigned away (active, or released with its cancelled booking)
        seats = [rep_id for _b, rep_id, released, *_rest in rows if released != reassigned]
        held = Counter(credit_holder(history, rep_id) for rep_id in seats)
        for _b, rep_id, released, assigned_at, status, _h in rows:
            if rep_id in members:
                moved = released == reassigned
                at = sqlrows.aware(assigned_at)
                out.append(OverrideHost(booking_id, rep_id, at, status, moved, held[rep_id]))
    return out


def _override_corrections(pool: Pool, rep_ids: list[int], *, start: datetime | None) -> dict[int, int]:
    """Count corrections against the plain rule (a host counts unless moved) for ``override_hosts``."""
    statuses = set(counted_statuses(pool))
    corrections: dict[int, int] = {}
    for row in override_hosts(pool, rep_ids):
        if row.status not in statuses or (start is not None and row.assigned_at < start):
            continue
        change = row.credits - int(not row.moved)
        if change:
            corrections[row.rep_id] = corrections.get(row.rep_id, 0) + change
    return corrections


# The ledger in plain SQL (``routing.sqlrows``), one statement: it runs on every slot page and every booking.
# tests/booking/test_booking_ledger_sql.py holds it to an ORM oracle over a varied history.
# The count of a period is read from the host rows' fairness tallies (``booking.HostTally``, kept by database
# triggers: ``booking.triggers``): per rep and counted status, the buckets of the period's kind from its start
# on (day, week and month periods start where their buckets do; ``never`` is the one all-time bucket), a few
# rows per rep whatever the pool's history. Counting the period's host rows instead, from index
# ``host_ledger``, the statement took 0.9–1.6 ms at 3,000 bookings in the month and 5.5 ms for a ``never``
# pool at 20,000, under the booking locks (0.5 and 0.35 ms now; 50 reps, 2026-12-06). ``rolling_30d`` reads
# its first day's host rows from its start, the day buckets after that day up to the next Monday, and the
# week buckets from that Monday on. The last assignment (of any period) is each rep's newest host row in the
# pool, from index ``host_ledger`` (booking pool, rep, assigned_at, released, booking status): host rows carry
# copies of their booking's pool and status, kept by triggers too, so no booking is looked up.
# tests/booking/test_booking_ledger_plan.py reads the plans.
# One statement: per rep, the counted host rows (``c``), the newest assignment and the ledger-only entries
# (``e``: expired "joined" deltas, assignments without a booking, non-counting overrides).
LEDGER_SQL = """
SELECT r.id, {hosts_columns}, e.instant, e.latest, e.overrides, e.expired, e.decaying, e.decaying_at
FROM routing_rep r
LEFT OUTER JOIN ({hosts}) c ON c.rep_id = r.id
LEFT OUTER JOIN ({entries}) e ON e.rep_id = r.id
WHERE r.id {reps}
"""
LAST_ASSIGNED = """(
  SELECT h.assigned_at FROM booking_bookinghost h
  WHERE h.booking_pool_id = %s AND h.rep_id = r.id AND h.released <> %s
  ORDER BY h.assigned_at DESC LIMIT 1
)"""
TALLY_SQL = """
  SELECT t.rep_id, SUM(t.n) AS n FROM booking_hosttally t
  WHERE t.pool_id = %s AND t.kind = %s AND t.start >= %s AND t.rep_id {reps} AND t.status IN ({statuses})
  GROUP BY t.rep_id
"""
ROLLING_SQL = """
  SELECT x.rep_id, SUM(x.n) AS n FROM (
    SELECT t.rep_id, t.n FROM booking_hosttally t
    WHERE t.pool_id = %s AND t.kind = 'day' AND t.start > %s AND t.start < %s AND t.rep_id {reps}
    AND t.status IN ({statuses})
    UNION ALL
    SELECT t.rep_id, t.n FROM booking_hosttally t
    WHERE t.pool_id = %s AND t.kind = 'week' AND t.start >= %s AND t.rep_id {reps}
    AND t.status IN ({statuses})
    UNION ALL
    SELECT h.rep_id, 1 FROM booking_bookinghost h
    WHERE h.booking_pool_id = %s AND h.rep_id {reps} AND h.assigned_at >= %s AND h.assigned_at < %s
    AND h.released <> %s AND h.booking_status IN ({statuses})
  ) x GROUP BY x.rep_id
"""
# The tallies' bucket kind of each period with a fixed start (``booking.HostTally.Kind``).
TALLY_KIND = {"day": "day", "week": "week", "month": "month", "never": "all"}
EPOCH = date(1970, 1, 1)  # the all-time bucket's first day
ENTRIES_SQL = """
  SELECT rep_id,
    SUM(delta) FILTER (WHERE ({instant} OR {taken_back}){since}) AS instant,
    MAX(created_at) FILTER (WHERE {instant}) AS latest,
    COUNT(id) FILTER (WHERE {override}) AS overrides,
    {expired} AS expired, {decaying} AS decaying, {decaying_at} AS decaying_at
  FROM routing_ledgerentry
  WHERE pool_id = %s AND rep_id {reps} AND ({instant} OR {taken_back} OR {override}{joined_or})
  GROUP BY rep_id
"""
INSTANT = "(kind = 'assigned' AND booking_id IS NULL)"
# An assignment without a booking taken back from its rep (``routing.services.ledger_taken_back``: the lead
# was routed by hand to another rep): -1, dated at the assignment, so that both leave the same periods; the
# rep keeps it as its last assignment. A second arm, not ``kind IN (…)``: PostgreSQL proves the partial index
# ``ledger_pool_special`` from arms like these.
TAKEN_BACK = "(kind = 'reassigned_from' AND booking_id IS NULL)"
OVERRIDE = "(kind IN ('reassigned_from', 'reassigned_to') AND delta = 0.0)"
# "joined" deltas of the current membership only: a member removed and added again, or moved in from another
# pool, starts afresh (``joined_at``), and the deltas of its old row, gone with that row's adjustment, must
# not be taken off the new one (they were: a head start for good, every period)
CURRENT = (
    "created_at >= (SELECT m.joined_at FROM routing_poolmember m "
    "WHERE m.pool_id = routing_ledgerentry.pool_id AND m.rep_id = routing_ledgerentry.rep_id)"
)
JOINED = f"(kind = 'joined' AND created_at < %s AND {CURRENT})"  # spent in full: before the period
DECAYING = f"(kind = 'joined' AND created_at >= %s AND created_at <= %s AND {CURRENT})"  # rolling: in step
# seconds since 1970 of ``created_at`` (a rolling period's deltas are spent in proportion to their age)
EPOCH_SECONDS = {
    "postgresql": "EXTRACT(EPOCH FROM created_at)",
    "sqlite": "((julianday(created_at) - 2440587.5) * 86400.0)",
}


def pool_ledger(pool: Pool, rep_ids: list[int], *, now: datetime) -> Ledger:
    """One query (``LEDGER_SQL``): host-row aggregates and ledger-only entries (expired "joined" deltas,
    instant assignments without a booking, non-counting overrides); one more (``override_hosts``) only if
    a member has had such an override."""
    query = ledger_query(pool, rep_ids, now=now)
    if query is None:
        return Ledger(raw={}, expired_joined={}, last_assigned={})
    return query.read(sqlrows.rows(query.sql, query.params))


@dataclass(frozen=True)
class LedgerQuery:
    """``pool_ledger``'s statement, for a caller that sends it with others (``sqlrows.batch``), and how to
    read its rows."""

    pool: Pool
    rep_ids: list[int]
    start: datetime | None
    sql: str
    params: list
    now: datetime

    def read(self, found) -> Ledger:
        raw, last = {}, {}
        expired: dict[int, float] = {}
        with_overrides = False
        window = (self.now - self.start).total_seconds() if self.start is not None else 0.0
        for rep_id, n, hosted, instant, latest, overrides, expired_sum, decaying, decaying_at in found:
            if decaying is not None:  # rolling: each spent by (now - recorded) / window (their sum may be 0)
                expired_sum = (expired_sum or 0.0) + (self.now.timestamp() * decaying - decaying_at) / window
            if hosted is not None:  # the rep has hosted in this pool (a rep without host rows has no figures)
                raw[rep_id] = n or 0
                last[rep_id] = sqlrows.aware(hosted)
            with_overrides = with_overrides or bool(overrides)
            if expired_sum:
                expired[rep_id] = expired_sum
            if instant:
                raw[rep_id] = raw.get(rep_id, 0) + instant
            latest = sqlrows.aware(latest)
            if latest is not None and (rep_id not in last or latest > last[rep_id]):
                last[rep_id] = latest
        if with_overrides:
            for rep_id, change in _override_corrections(self.pool, self.rep_ids, start=self.start).items():
                raw[rep_id] = raw.get(rep_id, 0) + change
        return Ledger(raw=raw, expired_joined=expired, last_assigned=last)


def ledger_query(pool: Pool, rep_ids: list[int], *, now: datetime) -> LedgerQuery | None:
    """``pool_ledger``'s statement and parameters (None without reps: nothing to read)."""
    from booking.models import BookingHost

    rep_ids = list(rep_ids)
    if not rep_ids:
        return None
    start = fairness_period_start(pool, now=now)
    since = sqlrows.at(start) if start is not None else None
    statuses = counted_statuses(pool)
    # A reassigned host no longer counts, unless the override did not count (``_override_corrections``).
    reassigned = BookingHost.Released.REASSIGNED
    reps, listed = sqlrows.among(rep_ids)
    lists = {"statuses": sqlrows.placeholders(statuses), "reps": reps}
    columns, params = f"c.n, {LAST_ASSIGNED}", [pool.pk, reassigned]
    if pool.fairness_period != Pool.FairnessPeriod.ROLLING_30D:  # the period's buckets from its start
        hosts = TALLY_SQL.format(**lists)
        first = start.date() if start is not None else EPOCH
        kind = TALLY_KIND.get(pool.fairness_period, "all")  # no start: everything counts, as for ``never``
        params += [pool.pk, kind, sqlrows.on(first), *listed, *statuses]
    else:  # rolling: its first day's host rows from its start, the day buckets up to the next Monday, weeks
        hosts = ROLLING_SQL.format(**lists)
        first = start.date()
        monday = first + timedelta(days=7 - first.weekday())
        next_day = datetime.combine(first + timedelta(days=1), time(), tzinfo=UTC)
        params += [pool.pk, sqlrows.on(first), sqlrows.on(monday), *listed, *statuses]
        params += [pool.pk, sqlrows.on(monday), *listed, *statuses]
        params += [pool.pk, *listed, since, sqlrows.at(next_day), reassigned, *statuses]
    # Ledger-only rows: "joined" deltas that expired with an earlier period, assignments without a booking
    # (``POST /api/v1/route`` hands a lead to a rep now), which count like bookings, less those taken back
    # (``TAKEN_BACK``), and whether any member has a non-counting override (then ``_override_corrections``
    # reads them).
    rolling = pool.fairness_period == Pool.FairnessPeriod.ROLLING_30D
    epoch = EPOCH_SECONDS.get(sqlrows.vendor(), EPOCH_SECONDS["postgresql"])
    entries = ENTRIES_SQL.format(
        instant=INSTANT,
        taken_back=TAKEN_BACK,
        since=" AND created_at >= %s" if start else "",
        override=OVERRIDE,
        expired=f"SUM(delta) FILTER (WHERE {JOINED})" if start else "NULL",
        decaying=f"SUM(delta) FILTER (WHERE {DECAYING})" if rolling else "NULL",
        decaying_at=f"SUM(delta * {epoch}) FILTER (WHERE {DECAYING})" if rolling else "NULL",
        reps=reps,
        joined_or=" OR kind = 'joined'" if start else "",
    )
    params += [since, since] if start else []
    params += [since, sqlrows.at(now)] * 2 if rolling else []
    params += [pool.pk, *listed, *listed]
    sql = LEDGER_SQL.format(hosts_columns=columns, hosts=hosts, entries=entries, reps=reps)
    return LedgerQuery(pool, rep_ids, start, sql, params, now)


def member_count(member: PoolMember, ledger: Ledger, rep_id: int | None = None) -> float:
    """The member's fairness count (see module docstring). ``rep_id``: the member's, where the caller has
    it (``member.rep_id`` is a Python-level descriptor: 50 reads under a 50-rep pool's booking locks)."""
    if rep_id is None:
        rep_id = member.rep_id
    return ledger.raw.get(rep_id, 0) + member.adjustment - ledger.expired_joined.get(rep_id, 0.0)
