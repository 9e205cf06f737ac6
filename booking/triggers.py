"""Database triggers that copy a booking's pool and status onto its host rows.

The fairness ledger (``routing.ledger``) counts a pool's host rows of the current period by booking status.
Reading the pool and status through the booking cost one booking lookup per host row (5.2 ms at 1,600
bookings of a 50-rep pool in a month, under the booking locks, on every booking). With copies on the host
row, ``BookingHost.booking_pool_id`` and ``BookingHost.booking_status``, the count is one index range per
rep (index ``host_ledger``).

The copies are the database's: whatever writes (the ORM, ``routing.sqlrows``' bulk statements, raw SQL, a
``save()`` that sends back a stale copy), a trigger sets them from the booking when a host row is inserted
or an update sets its booking or the copies (an update of other columns, e.g. ``active``, leaves them as
they are), and a booking whose status or pool changes passes them on to its host rows.

``install`` creates the triggers (idempotent). It runs in migration 0009 and after every ``migrate``
(``BookingConfig.ready`` connects it to ``post_migrate``): SQLite drops a table's triggers when Django
rebuilds the table in a later migration.
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
# Existing host rows (migration 0009), in plain SQL both databases understand.
_OF_ROW = "FROM booking_booking b WHERE b.id = booking_bookinghost.booking_id"
BACKFILL = (
    f"UPDATE booking_bookinghost SET booking_pool_id = (SELECT b.pool_id {_OF_ROW}), "
    f"booking_status = (SELECT b.status {_OF_ROW})"
)


def _statements(vendor: str, *, drop: bool = False) -> list[str]:
    if vendor == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    if vendor == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    raise NotImplementedError(f"booking.triggers: no triggers written for {vendor!r}")


def install(connection) -> None:
    """Create (or replace) the triggers on ``connection``'s database (SQLite has no CREATE OR REPLACE
    TRIGGER: they are dropped first, so a changed definition takes effect)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for sql in SQLITE_DROP:
                cursor.execute(sql)
        for sql in _statements(connection.vendor):
            cursor.execute(sql)


def uninstall(connection) -> None:
    with connection.cursor() as cursor:
        for sql in _statements(connection.vendor, drop=True):
            cursor.execute(sql)


NAMES = {
    "postgresql": {"baton_host_copy", "baton_booking_copy"},
    "sqlite": {"baton_host_copy_insert", "baton_host_copy_update", "baton_booking_copy"},
}


def installed(connection) -> set[str]:
    """Names of this module's triggers present in ``connection``'s database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()} & NAMES.get(connection.vendor, set())


def on_post_migrate(sender, using: str = "default", **kwargs) -> None:
    """``post_migrate`` receiver: (re)create the triggers when the host rows have the copy columns (not
    before migration 0009, nor after it is unapplied)."""
    from django.db import connections

    connection = connections[using]
    if "booking_bookinghost" not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        columns = {
            c.name for c in connection.introspection.get_table_description(cursor, "booking_bookinghost")
        }
    if {"booking_pool_id", "booking_status"} <= columns:
        install(connection)
