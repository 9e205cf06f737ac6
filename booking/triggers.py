"""Database triggers that copy a booking's pool and status onto its host rows, and keep the host rows'
fairness tallies (``HostTally``).

The fairness ledger (``routing.ledger``) reads a pool's host rows by booking status: each rep's newest, and
a rolling period's first day. Reading the pool and status through the booking cost one booking lookup per
host row (5.2 ms at 1,600 bookings of a 50-rep pool in a month, under the booking locks, on every booking,
when the ledger counted the period's host rows). With copies on the host row,
``BookingHost.booking_pool_id`` and ``BookingHost.booking_status``, they come from one index
(``host_ledger``), and the tallies below are keyed by them.

The copies are the database's: whatever writes (the ORM, ``routing.sqlrows``' bulk statements, raw SQL, a
``save()`` that sends back a stale copy), a trigger sets them from the booking when a host row is inserted
or an update sets its booking or the copies (an update of other columns, e.g. ``active``, leaves them as
they are), and a booking whose status or pool changes passes them on to its host rows.

The tallies: each host row that counts (it has a pool and status and was not reassigned away) adds one to
four ``booking_hosttally`` rows of its pool, rep and status, the buckets of its ``assigned_at`` (UTC): day,
week from Monday, month, all time. A trigger after every insert, delete and update of a host row takes the
old row's counts off and puts the new row's on (an update that changes none of pool, rep, status and
``assigned_at``, and neither starts nor stops the row counting, changes nothing: a cancellation's release
keeps it counting); a booking's status change reaches its host rows by the copy trigger, so the tallies
follow it. The fairness ledger then reads a period's count per rep from a few tally rows
(``routing.ledger``) instead of counting the period's host rows under the booking locks (the ledger
statement of a 50-rep pool took 0.9–1.6 ms at 3,000 bookings in the month, 5.5 ms for a ``never`` pool
at 20,000; 0.5 and 0.35 ms from the tallies). ``recount`` rebuilds them from the host rows (migration
0010); tests/conftest.py checks after every test that the triggers kept them so.

``install`` creates the triggers (idempotent). It runs in migration 0009 and after every ``migrate``
(``BookingConfig.ready`` connects it to ``post_migrate``). On SQLite a ``migrate`` that changes the schema
of either table runs without them (``on_pre_migrate`` drops them): Django rebuilds a table for most schema
changes, and the rebuild's final rename failed on the other table's triggers ("error in trigger
baton_host_copy_insert: no such table: main.booking_booking"), so any later migration rebuilding either
table failed on the default install; ``post_migrate`` then creates them again and recomputes the copies
and tallies.
"""

from __future__ import annotations

POSTGRESQL = [
    """
CREATE OR REPLACE FUNCTION baton_host_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT b.pool_id, b.status INTO NEW.booking_pool_id, NEW.booking_status
  FROM booking_booking b WHERE b.id = NEW.booking_id;
  RETURN NEW;
END
$$
""",
    """
CREATE OR REPLACE TRIGGER baton_host_copy
BEFORE INSERT OR UPDATE OF booking_id, booking_pool_id, booking_status ON booking_bookinghost
FOR EACH ROW EXECUTE FUNCTION baton_host_copy()
""",
    """
CREATE OR REPLACE FUNCTION baton_booking_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE booking_bookinghost SET booking_pool_id = NEW.pool_id, booking_status = NEW.status
  WHERE booking_id = NEW.id;
  RETURN NULL;
END
$$
""",
    """
CREATE OR REPLACE TRIGGER baton_booking_copy AFTER UPDATE OF status, pool_id ON booking_booking
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.pool_id IS DISTINCT FROM NEW.pool_id)
EXECUTE FUNCTION baton_booking_copy()
""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS baton_host_copy ON booking_bookinghost",
    "DROP TRIGGER IF EXISTS baton_booking_copy ON booking_booking",
    "DROP FUNCTION IF EXISTS baton_host_copy()",
    "DROP FUNCTION IF EXISTS baton_booking_copy()",
]

# SQLite has no BEFORE trigger that can change NEW: the copies are written by an UPDATE after the row's
# own statement, only when they differ (so the UPDATE does not fire the update trigger again).
_POOL = "(SELECT b.pool_id FROM booking_booking b WHERE b.id = NEW.booking_id)"
_STATUS = "(SELECT b.status FROM booking_booking b WHERE b.id = NEW.booking_id)"
_SET = (
    f"UPDATE booking_bookinghost SET booking_pool_id = {_POOL}, booking_status = {_STATUS} WHERE id = NEW.id"
)
_STALE = f"NEW.booking_pool_id IS NOT {_POOL} OR NEW.booking_status IS NOT {_STATUS}"
SQLITE = [
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_copy_insert AFTER INSERT ON booking_bookinghost
FOR EACH ROW WHEN {_STALE} BEGIN {_SET}; END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_copy_update
AFTER UPDATE OF booking_id, booking_pool_id, booking_status ON booking_bookinghost
FOR EACH ROW WHEN {_STALE} BEGIN {_SET}; END
""",
    """
CREATE TRIGGER IF NOT EXISTS baton_booking_copy AFTER UPDATE OF status, pool_id ON booking_booking
FOR EACH ROW WHEN OLD.status IS NOT NEW.status OR OLD.pool_id IS NOT NEW.pool_id BEGIN
  UPDATE booking_bookinghost SET booking_pool_id = NEW.pool_id, booking_status = NEW.status
  WHERE booking_id = NEW.id;
END
""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS baton_host_copy_insert",
    "DROP TRIGGER IF EXISTS baton_host_copy_update",
    "DROP TRIGGER IF EXISTS baton_booking_copy",
]
# The tallies. A host row counts when it has a pool and a status and was not reassigned away.
COUNTS = (
    "{row}.booking_pool_id IS NOT NULL AND {row}.booking_status IS NOT NULL "
    "AND {row}.released <> 'reassigned'"
)
# The buckets of a host row's ``assigned_at`` (UTC), as ``kind``, first day.
BUCKETS = {
    "postgresql": [
        ("day", "({at} AT TIME ZONE 'UTC')::date"),
        ("week", "date_trunc('week', {at} AT TIME ZONE 'UTC')::date"),
        ("month", "date_trunc('month', {at} AT TIME ZONE 'UTC')::date"),
        ("all", "DATE '1970-01-01'"),
    ],
    # Django stores UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]": its first ten characters are the day. (SQLite's
    # date() rounds to the millisecond: 23:59:59.9996 would be the next day.)
    "sqlite": [
        ("day", "substr({at}, 1, 10)"),
        ("week", "date(substr({at}, 1, 10), '-6 days', 'weekday 1')"),
        ("month", "date(substr({at}, 1, 10), 'start of month')"),
        ("all", "'1970-01-01'"),
    ],
}
TALLY_KEY = "pool_id, kind, start, rep_id, status"  # HostTally's unique constraint


def _move(vendor: str, row: str, n: int) -> str:
    """The statement that adds ``n`` (1: ``NEW`` comes, -1: ``OLD`` goes) to each of ``row``'s buckets.

    On PostgreSQL one upsert either way, its rows in one order (day, week, month, all time), so that two
    transactions that change tallies of one rep take the rows' locks in the same order: an ``UPDATE`` takes
    them in index order, which deadlocked a cancellation against a new booking of the same rep
    (tests/booking/test_booking_tally_concurrency.py). On SQLite, whose writers take turns on the whole
    database, ``OLD`` goes by an ``UPDATE``, which leaves a missing row missing: Django's test flush empties
    the tables one by one with ``DELETE``, in no fixed order, and an upsert left -1 rows behind for host rows
    deleted after their tallies (PostgreSQL's flush truncates, which fires no trigger)."""
    buckets = [(kind, start.format(at=row + ".assigned_at")) for kind, start in BUCKETS[vendor]]
    if vendor == "sqlite" and n < 0:
        which = " OR ".join(f"(kind = '{kind}' AND start = {first})" for kind, first in buckets)
        return (
            f"UPDATE booking_hosttally SET n = n - 1 WHERE pool_id = {row}.booking_pool_id "
            f"AND rep_id = {row}.rep_id AND status = {row}.booking_status AND ({which})"
        )
    values = ", ".join(
        f"({row}.booking_pool_id, '{kind}', {first}, {row}.rep_id, {row}.booking_status, {n})"
        for kind, first in buckets
    )
    return (
        f"INSERT INTO booking_hosttally ({TALLY_KEY}, n) VALUES {values} "
        f"ON CONFLICT ({TALLY_KEY}) DO UPDATE SET n = booking_hosttally.n + excluded.n"
    )


# An update moves the row's counts when its buckets' key changes or it starts or stops counting (a release
# from a booking's cancellation keeps counting: nothing moves).
_KEYS = ("booking_pool_id", "rep_id", "booking_status", "assigned_at")
POSTGRESQL_TALLY = [
    f"""
CREATE OR REPLACE FUNCTION baton_host_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND ({", ".join("OLD." + k for k in _KEYS)})
     IS NOT DISTINCT FROM ({", ".join("NEW." + k for k in _KEYS)})
     AND ({COUNTS.format(row="OLD")}) = ({COUNTS.format(row="NEW")}) THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' AND {COUNTS.format(row="OLD")} THEN
    {_move("postgresql", "OLD", -1)};
  END IF;
  IF TG_OP <> 'DELETE' AND {COUNTS.format(row="NEW")} THEN
    {_move("postgresql", "NEW", 1)};
  END IF;
  RETURN NULL;
END
$$
""",
    """
CREATE OR REPLACE TRIGGER baton_host_tally AFTER INSERT OR UPDATE OR DELETE ON booking_bookinghost
FOR EACH ROW EXECUTE FUNCTION baton_host_tally()
""",
]
POSTGRESQL_TALLY_DROP = [
    "DROP TRIGGER IF EXISTS baton_host_tally ON booking_bookinghost",
    "DROP FUNCTION IF EXISTS baton_host_tally()",
]
_CHANGED = " OR ".join(
    [f"OLD.{k} IS NOT NEW.{k}" for k in _KEYS]
    + [f"({COUNTS.format(row='OLD')}) IS NOT ({COUNTS.format(row='NEW')})"]
)
SQLITE_TALLY = [
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_tally_insert AFTER INSERT ON booking_bookinghost
FOR EACH ROW WHEN {COUNTS.format(row="NEW")} BEGIN {_move("sqlite", "NEW", 1)}; END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_tally_delete AFTER DELETE ON booking_bookinghost
FOR EACH ROW WHEN {COUNTS.format(row="OLD")} BEGIN {_move("sqlite", "OLD", -1)}; END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_tally_update_old AFTER UPDATE ON booking_bookinghost
FOR EACH ROW WHEN ({_CHANGED}) AND {COUNTS.format(row="OLD")} BEGIN {_move("sqlite", "OLD", -1)}; END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS baton_host_tally_update_new AFTER UPDATE ON booking_bookinghost
FOR EACH ROW WHEN ({_CHANGED}) AND {COUNTS.format(row="NEW")} BEGIN {_move("sqlite", "NEW", 1)}; END
""",
]
SQLITE_TALLY_DROP = [
    "DROP TRIGGER IF EXISTS baton_host_tally_insert",
    "DROP TRIGGER IF EXISTS baton_host_tally_delete",
    "DROP TRIGGER IF EXISTS baton_host_tally_update_old",
    "DROP TRIGGER IF EXISTS baton_host_tally_update_new",
]


def tally_rows_sql(vendor: str) -> str:
    """Every tally row as the host rows give it (``pool_id, kind, start, rep_id, status, n``): what the
    triggers keep, recounted (``recount``; the tests' check after every test)."""
    selects = []
    for kind, start in BUCKETS[vendor]:
        first = start.format(at="h.assigned_at")
        selects.append(
            f"SELECT h.booking_pool_id, '{kind}', {first}, h.rep_id, h.booking_status, COUNT(*) "
            f"FROM booking_bookinghost h WHERE {COUNTS.format(row='h')} "
            f"GROUP BY h.booking_pool_id, h.rep_id, h.booking_status, {first}"
        )
    return " UNION ALL ".join(selects)


def recount(connection) -> None:
    """Rebuild the tallies from the host rows (migration 0010)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM booking_hosttally")
        cursor.execute(f"INSERT INTO booking_hosttally ({TALLY_KEY}, n) {tally_rows_sql(connection.vendor)}")


def tallies_kept_and_counted(connection) -> tuple[set, set]:
    """The tallies the triggers kept (non-zero rows) and the ones the host rows give, as sets of (pool,
    kind, first day, rep, status, n): equal unless a write went uncounted (tests/conftest.py checks it
    after every test). Both in one statement, so in one snapshot without a lock (the triggers write a host
    row and its tallies in one transaction): ``recount_tallies --check`` holds no writer up."""
    kept_sql = "SELECT 1, pool_id, kind, start, rep_id, status, n FROM booking_hosttally WHERE n <> 0"
    counted_sql = f"SELECT 0, c.* FROM ({tally_rows_sql(connection.vendor)}) AS c"
    kept: set = set()
    counted: set = set()
    with connection.cursor() as cursor:
        cursor.execute(f"{kept_sql} UNION ALL {counted_sql}")
        for is_kept, p, k, d, r, s, n in cursor.fetchall():
            (kept if is_kept else counted).add((p, k, str(d), r, s, n))
    return kept, counted


# Existing host rows (migration 0009), in plain SQL both databases understand.
_OF_ROW = "FROM booking_booking b WHERE b.id = booking_bookinghost.booking_id"
BACKFILL = (
    f"UPDATE booking_bookinghost SET booking_pool_id = (SELECT b.pool_id {_OF_ROW}), "
    f"booking_status = (SELECT b.status {_OF_ROW})"
)


def _statements(vendor: str, *, drop: bool = False, copy: bool = True, tally: bool = True) -> list[str]:
    """The statements that create (or ``drop``) the copy triggers (``copy``) and the tallies' (``tally``)."""
    if vendor == "postgresql":
        copies, tallies = (POSTGRESQL_DROP, POSTGRESQL_TALLY_DROP) if drop else (POSTGRESQL, POSTGRESQL_TALLY)
    elif vendor == "sqlite":
        copies, tallies = (SQLITE_DROP, SQLITE_TALLY_DROP) if drop else (SQLITE, SQLITE_TALLY)
    else:
        raise NotImplementedError(f"booking.triggers: no triggers written for {vendor!r}")
    return (copies if copy else []) + (tallies if tally else [])


def _has_tallies(connection) -> bool:
    return "booking_hosttally" in connection.introspection.table_names()


def install(connection) -> None:
    """Create (or replace) the triggers on ``connection``'s database, the tallies' only where their table
    exists (not before migration 0010). SQLite has no CREATE OR REPLACE TRIGGER: they are dropped first, so
    a changed definition takes effect."""
    tally = _has_tallies(connection)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for sql in _statements("sqlite", drop=True):
                cursor.execute(sql)
        for sql in _statements(connection.vendor, tally=tally):
            cursor.execute(sql)


def uninstall(connection, *, tally_only: bool = False) -> None:
    """Drop the triggers (``tally_only``: the tallies' only)."""
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, drop=True, copy=not tally_only):
            cursor.execute(sql)


NAMES = {
    "postgresql": {"baton_host_copy", "baton_booking_copy", "baton_host_tally"},
    "sqlite": {
        "baton_host_copy_insert",
        "baton_host_copy_update",
        "baton_booking_copy",
        "baton_host_tally_insert",
        "baton_host_tally_delete",
        "baton_host_tally_update_old",
        "baton_host_tally_update_new",
    },
}


def installed(connection) -> set[str]:
    """Names of this module's triggers present in ``connection``'s database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()} & NAMES.get(connection.vendor, set())


REBUILT = {"booking", "bookinghost", "hosttally"}  # the tables the triggers are on, read or write


def _rebuilds(plan) -> bool:
    """Whether a migration of the plan changes the schema of the bookings' or host rows' table (SQLite
    rebuilds the table for most such changes)."""
    for migration, _backwards in plan or ():
        if migration.app_label != "booking":
            continue
        for operation in migration.operations:
            model = getattr(operation, "model_name", None) or getattr(operation, "name", None)
            if str(model).lower() in REBUILT:
                return True
    return False


def pause_on_sqlite(apps, schema_editor) -> None:
    """A ``RunPython`` step for a migration that rebuilds the bookings' or host rows' table on SQLite, before
    (and, reversed, after) its schema change: the triggers go, and ``on_post_migrate`` puts them back and
    recounts. ``on_pre_migrate`` drops them only when they are there as the ``migrate`` starts: on a new
    database migration 0009 installs them midway, and a later rebuild in the same run failed as above."""
    if schema_editor.connection.vendor == "sqlite":
        uninstall(schema_editor.connection)


def on_pre_migrate(sender, using: str = "default", plan=None, **kwargs) -> None:
    """``pre_migrate`` receiver: on SQLite, drop the triggers for a ``migrate`` that changes the schema of
    the bookings' or host rows' table (see the module docstring); ``on_post_migrate`` puts them back and
    recounts. (A ``migrate`` that fails before its end leaves them dropped until the next one succeeds.)"""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite" or not _rebuilds(plan) or not installed(connection):
        return
    uninstall(connection)


def on_post_migrate(sender, using: str = "default", **kwargs) -> None:
    """``post_migrate`` receiver: (re)create the triggers when the host rows have the copy columns (not
    before migration 0009, nor after it is unapplied). Where any was missing (dropped for this run by
    ``on_pre_migrate``, or by an earlier run that failed midway), the copies and tallies are computed
    afresh: writes made without them went uncounted."""
    from django.db import connections

    connection = connections[using]
    if "booking_bookinghost" not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        columns = {
            c.name for c in connection.introspection.get_table_description(cursor, "booking_bookinghost")
        }
    if {"booking_pool_id", "booking_status"} <= columns:
        expected = NAMES.get(connection.vendor, set())
        if not _has_tallies(connection):
            expected = {name for name in expected if "tally" not in name}
        missing = expected - installed(connection)
        install(connection)
        if missing:
            with connection.cursor() as cursor:
                cursor.execute(BACKFILL)
            if _has_tallies(connection):
                recount(connection)
