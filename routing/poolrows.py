"""The statements ``routing.selectors`` loads a pool's rows with (plain SQL through ``routing.sqlrows``),
and the range-overlap test they share."""

from __future__ import annotations

from routing import sqlrows

# Phase one's and two's row loads in plain SQL (``routing.sqlrows``), the same filters and orders as the ORM
# queries they replace; keywords used as column names are quoted. ``{reps}`` is ``sqlrows.among``'s test.
OVERRIDES_SQL = (  # date overrides (the weekly hours are the roster's: ``routing.rosters``)
    'SELECT rep_id, date, start, "end" FROM calendars_dateoverride WHERE rep_id {reps} '
    "AND date >= %s AND date <= %s"
)
INTERVALS_SQL = (  # time off (0) and busy time (1) in one statement, each ordered by rep and start
    'SELECT 0, rep_id, start, "end" FROM calendars_timeoff WHERE rep_id {reps} '
    'AND "end" > %s AND start < %s UNION ALL '
    'SELECT 1, rep_id, start, "end" FROM calendars_busyinterval WHERE rep_id {near} '
    "AND {busy_overlap}{probe} ORDER BY 1, 2, 3"
)
# With a probe range (a booking's buffered range): also the reps' active host rows overlapping it (2), the
# booking's fast-fail test before the locks (``load_pool_bookings``'s ``taken`` is the one under them).
PROBE_SQL = (
    " UNION ALL SELECT 2, p.rep_id, p.blocked_start, p.blocked_end FROM booking_bookinghost p "
    "WHERE p.rep_id {near} AND p.active AND {overlap}"
)
HOSTS_SQL = (  # busy and counted at once (no meeting type: every row of the window matters)
    "SELECT h.rep_id, h.blocked_start, h.blocked_end, b.start, b.pool_id FROM booking_bookinghost h "
    "INNER JOIN booking_booking b ON b.id = h.booking_id WHERE h.rep_id {near} AND h.active "
    "AND {overlap}{exclude} ORDER BY h.rep_id, h.blocked_start"
)
HOSTS_BUSY_SQL = (  # what can overlap a start in the window
    "SELECT h.rep_id, h.blocked_start, h.blocked_end FROM booking_bookinghost h WHERE h.rep_id {near} "
    "AND h.active AND {overlap}{exclude} ORDER BY h.rep_id, h.blocked_start"
)
HOSTS_COUNTED_SQL = (  # meetings per local date, for the reps with a daily cap
    "SELECT h.rep_id, b.start, b.pool_id FROM booking_bookinghost h "
    "INNER JOIN booking_booking b ON b.id = h.booking_id WHERE h.rep_id {near} AND h.active "
    "AND {overlap}{exclude}"
)
# Rows overlapping the window [%s, %s). On PostgreSQL as a range overlap, which a GiST index led by the range
# answers from the rows near the window: for host rows the exclusion constraint's (booking migration 0011),
# for busy rows ``busy_range_rep`` (calendars migration 0007). The plain comparisons can use a b-tree on one
# bound only, so PostgreSQL read every later row of the reps, or the table: 50 reps with 60,000 future host
# rows, the statement under the booking locks, 4.1 against 0.9 ms planned per execution and 1.38 against
# 0.83 ms as a prepared statement; 50 reps with ~580 future busy rows each, phase one's statement 1.73 against
# 0.78 ms. GiST indexes led by the rep then read most of their pages for all a pool's reps (``rep_id =
# ANY(…)`` is no GiST condition): led by the range, host rows near a booking 0.24–0.38 → 0.06–0.09 ms (60,000
# future rows), phase one's statement 0.38 → 0.09 ms (2026-12-06).
# Elsewhere (SQLite) the comparisons. The windows passed are never empty nor reversed: margins, buffers and
# the meeting's length widen them, and check constraints keep every stored range valid.
RANGE_OVERLAP = "tstzrange({start}, {end}, '[)') && tstzrange(%s, %s, '[)')"
PLAIN_OVERLAP = "{end} > %s AND {start} < %s"


def overlap(start: str, end: str) -> str:
    """The test "columns ``start``–``end`` overlap the window" for the current database (parameters: the
    window's start, then its end)."""
    template = RANGE_OVERLAP if sqlrows.vendor() == "postgresql" else PLAIN_OVERLAP
    return template.format(start=start, end=end)


def near(reps: str) -> str:
    """``sqlrows.among``'s rep test (``reps``) for a statement that finds its rows by the range overlap
    (``overlap``), after the column. On PostgreSQL as ``+ 0 = ANY(…)``, which no index can answer, so that
    the rows come from the range-led GiST index near the window and the rep test filters them. Such
    statements run prepared, under one generic plan made with the statistics of that moment: with few or
    none (a new database, or one that grew since its last ``ANALYZE``) PostgreSQL made the rep test a
    condition of the index scans, and a bitmap index scan runs a ``= ANY`` condition once per element (or
    the b-tree on the rep joined in, reading every host row of the reps): a 50-rep pool's host rows near a
    booking took 150 index pages and 0.3 ms (under the booking locks) instead of a few pages and 0.03 ms
    (tests/booking/test_booking_hosts_plan.py, tests/calendars/test_calendars_busy_plan.py). SQLite keeps
    its plain test (its indexes on the rep serve the plain comparisons there)."""
    return f"+ 0 {reps}" if sqlrows.vendor() == "postgresql" else reps


def host_overlap(alias: str = "h") -> str:
    """``overlap`` for the host rows ``alias``."""
    return overlap(f"{alias}.blocked_start", f"{alias}.blocked_end")
