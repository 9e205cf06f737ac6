"""A pool's roster: its member rows (rep selected) and each member's weekly working hours, built once and
kept per process between requests on PostgreSQL, where every use checks it against the rows' versions.

Every slot page and every booking reads a pool's members and their weekly hours, which change only when
someone edits them, and builds them into Python objects: for a 50-rep pool 50 member rows with their reps and
250 hours rows, with the schedules built from them a fifth of a booking's Python instructions (2026-12-06,
callgrind: docs/performance.md). The roster keeps what they are built into; a use sends
``version_statement`` with the statements it sends anyway (phase one's round trip,
``routing.selectors.load_pool_calendars``) and uses the roster only if the version is the one it was built
at, else builds it again.

The version is PostgreSQL's own: each row version's physical place and inserting transaction (``ctid``,
``xmin``), hashed and summed, with the count, over the pool's member rows, their reps and those reps'
working-hours rows. An insert, update or delete of any of them, whatever wrote it (admin, config files,
raw SQL), makes a new row version with a new ``(ctid, xmin)`` pair or removes one: a transaction never
makes two versions at one place, and a place reused later holds a version of another transaction. A
roster built inside a transaction that rolls back carries a version no committed state ever has. The
version is read before the rows it vouches for (a change in between makes the next use build again), and a
use compares it in the same round trip as the rest of its reads. A false match needs a changed set of row
versions with the same count and the same sum of their 64-bit hashes. Rewriting a table (``VACUUM FULL``,
``CLUSTER``) only makes rosters build again.

SQLite has no row versions to read: there the roster is built for each use, as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass

from routing import sqlrows
from routing.core import RepSchedule
from routing.models import Pool, PoolMember

# (ctid, xmin) of the pool's member rows with their reps, and of those reps' working hours
VERSION_SQL = (
    "SELECT count(*), coalesce(sum(v), 0) FROM ("
    "SELECT hashtextextended(t.ctid::text || t.xmin::text || r.ctid::text || r.xmin::text, 0) AS v "
    "FROM routing_poolmember t INNER JOIN routing_rep r ON r.id = t.rep_id WHERE t.pool_id = %s "
    "UNION ALL SELECT hashtextextended(w.ctid::text || w.xmin::text, 0) FROM calendars_workinghours w "
    "INNER JOIN routing_poolmember m ON m.rep_id = w.rep_id WHERE m.pool_id = %s) s"
)
WEEKLY_SQL = (  # the weekly hours of the pool's members' reps
    'SELECT w.rep_id, w.weekday, w.start, w."end" FROM calendars_workinghours w '
    "INNER JOIN routing_poolmember m ON m.rep_id = w.rep_id WHERE m.pool_id = %s"
)
# rosters kept per process, the least recently used dropped first: a 50-rep pool's takes ~91 KiB (tracemalloc,
# 2026-12-06), so at most ~23 MiB per process with every kept pool that large
KEPT = 256


@dataclass(frozen=True)
class Roster:
    """A pool's members and their weekly hours. Shared between requests: treat as read-only."""

    members: tuple[PoolMember, ...]  # ordered by pk, rep selected
    rep_ids: tuple[int, ...]  # sorted, distinct
    version: tuple | None  # None: not to be kept (SQLite)
    # rep id → its schedule from the member and hours rows alone (weekly hours as sorted local ranges; no
    # overrides, time off or busy time; active as the rep row says), which a load uses as it is for the
    # members with nothing more that day
    schedules: dict[int, RepSchedule]
    capped: frozenset[int]  # the reps with a daily cap (their member row's or their own)


_kept: OrderedDict[tuple, Roster] = OrderedDict()
_lock = threading.Lock()


def _key(pool: Pool) -> tuple:
    db = sqlrows._db()
    return (db.alias, db.settings_dict.get("NAME"), db.settings_dict.get("HOST"), pool.pk)


def kept(pool: Pool) -> Roster | None:
    """The roster kept for ``pool`` (to be checked with ``version_statement``), or None."""
    if sqlrows.vendor() != "postgresql":
        return None
    key = _key(pool)
    with _lock:
        roster = _kept.get(key)
        if roster is not None:
            _kept.move_to_end(key)
        return roster


def version_statement(pool: Pool) -> tuple[str, list]:
    """The statement whose one row is the version of ``pool``'s roster rows (PostgreSQL only)."""
    return VERSION_SQL, [pool.pk, pool.pk]


def current(roster: Roster, found: list[tuple]) -> bool:
    """Whether ``found``, the rows of ``version_statement``, is the version ``roster`` was built at."""
    return roster.version is not None and tuple(found[0]) == roster.version


def pool_members(pool: Pool) -> list[PoolMember]:
    """The pool's member rows, rep selected, by pk. The explicit ordering matters: the models' default
    ("rep" → the rep's name) would join and sort by routing_rep on this hot path (slot pages, bookings)."""
    return sqlrows.instances(PoolMember, "t.pool_id = %s", [pool.pk], related="rep", order_by="t.id")


def build(pool: Pool) -> Roster:
    """Read and build ``pool``'s roster, and keep it (PostgreSQL): the version first, then the rows."""
    postgres = sqlrows.vendor() == "postgresql"
    statements = [version_statement(pool)] if postgres else []
    *found_version, found_weekly = sqlrows.batch([*statements, (WEEKLY_SQL, [pool.pk])])
    members = tuple(pool_members(pool))
    rep_ids = tuple(sorted({m.rep_id for m in members}))
    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for rep_id, weekday, start, end in found_weekly:
        weekly[rep_id][weekday].append((start, end))
    version = tuple(found_version[0][0]) if postgres else None
    schedules = {
        m.rep_id: RepSchedule(
            rep_id=m.rep_id,
            timezone=m.rep.timezone,
            weekly_hours={day: tuple(sorted(ranges)) for day, ranges in weekly[m.rep_id].items()},
            active=m.rep.active,
            daily_cap=m.rep.daily_cap,
            name=m.rep.name,
        )
        for m in members
    }
    capped = frozenset(m.rep_id for m in members if m.daily_cap is not None or m.rep.daily_cap is not None)
    roster = Roster(members, rep_ids, version, schedules, capped)
    if postgres:
        key = _key(pool)
        with _lock:
            _kept[key] = roster
            _kept.move_to_end(key)
            while len(_kept) > KEPT:
                _kept.popitem(last=False)
    return roster


def forget() -> None:
    """Drop every kept roster (tests)."""
    with _lock:
        _kept.clear()
