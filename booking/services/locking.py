"""Per-rep booking locks and the database errors that mean "conflict, not crash".

On PostgreSQL every write that gives a rep a booking first takes a transaction-scoped advisory lock per
candidate rep (``pg_advisory_xact_lock``), late (just before the availability re-check), once, in ascending
rep-id order (no deadlocks between bookings), with a transaction-local ``lock_timeout`` of
``BOOKING_LOCK_TIMEOUT_MS``. A new booking sends its locks and its reads under them in one round trip
(``load_locked``), and all its rows with its COMMIT, which releases the locks, in one more
(``sqlrows.batch(…, commit=True)``). The exclusion constraint ``bookinghost_no_overlap``
(migration 0004) is the backstop.

On SQLite the transaction itself is the lock: settings open every transaction with ``BEGIN IMMEDIATE``, so
writers are serialised from their first statement.

``LOCKS_ENABLED`` exists for the negative-control test only (it proves the concurrency tests can fail).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

try:
    import psycopg
except ImportError:  # another PostgreSQL driver, or none
    psycopg = None

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Model

from booking.errors import SlotUnavailable, TryAgain
from routing import sqlrows, sqlwrites
from routing.selectors import PoolCalendars, PoolState, pool_bookings_query

LOCKS_ENABLED = True
# Advisory-lock key space: "BATO" in the high 32 bits, the rep id in the low 32 bits.
NAMESPACE = 0x4241544F << 32

EXCLUSION_VIOLATION = "23P01"
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK = "40P01"
SERIALIZATION_FAILURE = "40001"
# a statement cancelled: by ``statement_timeout`` (a DBA's, shorter than the lock timeout, ends a lock wait
# this way), or by a cancel request; either way nothing was written and the request may be sent again
QUERY_CANCELED = "57014"
CONTENTION = frozenset({LOCK_NOT_AVAILABLE, DEADLOCK, SERIALIZATION_FAILURE, QUERY_CANCELED})
# The database cannot serve now, and the same request may be sent again shortly: its transactions are
# read-only (25006: a failover to a replica, a primary made read-only), the server is shutting down or
# restarting or ended the session (57P01–57P03: ``pg_terminate_backend``, a failover), or it lacks resources
# (class 53: disk full, out of memory, too many connections). Class 08 (connection exceptions) is checked by
# its prefix.
READ_ONLY_TRANSACTION = "25006"
UNAVAILABLE = frozenset({READ_ONLY_TRANSACTION, "57P01", "57P02", "57P03"})
UNAVAILABLE_CLASSES = ("08", "53")


def lock_statements(rep_ids: Iterable[int]) -> list[tuple[str, list]]:
    """The lock timeout (``set_config(…, true)`` is ``SET LOCAL`` as a statement that returns a row) and
    every rep's lock in ascending key order (``unnest`` hands the sorted array's keys to the locks in
    order), to send in one round trip (``sqlrows.batch``), ahead of other statements or alone. Empty on
    SQLite and in the negative control. One lock statement per rep made PostgreSQL parse and plan 50
    statements under the locks of a 50-rep pool: 0.46–0.55 against 0.34–0.37 ms per transaction for one
    (uncontended, commit included)."""
    if connection.vendor != "postgresql" or not LOCKS_ENABLED:
        return []
    keys = "{" + ",".join(str(NAMESPACE | rid) for rid in sorted({int(rid) for rid in rep_ids})) + "}"
    return [
        timeout_statement(),
        ("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [keys]),
    ]


def timeout_statement() -> tuple[str, list]:
    """``BOOKING_LOCK_TIMEOUT_MS`` as this transaction's ``lock_timeout``, for the lock statements after it
    (the reps', an Idempotency-Key's turn)."""
    return "SELECT set_config('lock_timeout', %s, true)", [f"{int(settings.BOOKING_LOCK_TIMEOUT_MS)}ms"]


def limit_lock_waits() -> None:
    """Send ``timeout_statement`` as the first statement of the transaction just opened, before it waits for
    any lock: a change's booking row (another change of the booking holds it, or any long transaction), a
    table (a migration's ``ALTER TABLE`` holds it ACCESS EXCLUSIVE). Without it a change waited as long as
    the other held the lock (the lock timeout came only with its rep locks, ``lock_statements``). One round
    trip more per change (not per booking): the statement cannot go with the transaction's BEGIN, which
    psycopg sends and waits for on its own (in a pipeline too), nor with the row's read, an ORM query.
    Nothing on SQLite (its ``timeout`` bounds the wait for the database's write lock)."""
    if connection.vendor == "postgresql":
        sqlrows.rows(*timeout_statement())


@contextmanager
def change(*, durable: bool = True) -> Iterator[None]:
    """The transaction of a change of a booking (cancel, reschedule, outcome, reassignment, deletion):
    ``transaction.atomic`` (``durable``; a deletion's is a savepoint in the admin's transaction) whose lock
    waits, from its first statement on, end after ``BOOKING_LOCK_TIMEOUT_MS`` (``limit_lock_waits``):
    wrapped in ``conflicts``, such a wait is ``TryAgain``, with nothing changed."""
    with transaction.atomic(durable=durable):
        limit_lock_waits()
        yield


def lock_reps(rep_ids: Iterable[int]) -> None:
    """Take the booking lock of every rep in ``rep_ids`` (inside the current transaction), sorted.

    Every write that changes a rep's active host rows or their fairness tallies takes them, not only a new
    booking: a cancellation, a completed/no-show status, a reschedule, a reassignment. The tally trigger
    (``booking.triggers``) locks a booking's tally rows host row by host row, and a group booking's hosts
    come in the order of their roles, a cancellation's in the order of the rows' keys (a reassigned host's
    row is newer): two such writes of the same two reps could take each other's rows in opposite orders
    and deadlock. Holding the reps' locks (taken in one order) first, they take turns instead
    (tests/booking/test_booking_tally_concurrency.py). The caller locks the booking's row before, as every
    change of a booking does; a new booking locks no existing booking row."""
    sqlrows.batch(lock_statements(rep_ids))


def load_locked(
    calendars: PoolCalendars, *, reserve: type[Model] | None = None, **options
) -> tuple[PoolState | None, int | None]:
    """Lock every rep of ``calendars`` (``lock_statements``) and load the pool's bookings under the locks
    (``pool_bookings_query`` with ``options``), in one round trip on PostgreSQL: where every booking of a
    pool queues for the same locks, what a booking does while it holds them bounds the pool's booking rate,
    and on a busy machine a round trip there waits for its turn on the CPUs twice, the server's and the
    client's (two extra ``SELECT 1`` round trips under the locks cost 0.35–0.45 ms each with 16 clients
    on one 50-rep pool, 2026-12-06). With ``reserve`` (a model) the same round trip takes a new key for it,
    before the locks (``sqlwrites.key_statement``; None on SQLite), so that the booking's rows can go in
    one more; a key not used (the slot was taken, the locks timed out) leaves a gap in the keys.
    Returns the pool's state (None: the slot was taken, see ``load_pool_bookings``) and the key."""
    query = pool_bookings_query(calendars, **options)
    # the key first: a sequence is not transactional, so it need not wait for the locks nor hold them
    key = sqlwrites.key_statement(reserve) if reserve is not None else None
    first = [key] if key is not None else []
    first += lock_statements(calendars.rep_ids)
    found = sqlrows.batch([*first, *query.statements])
    reserved = found[0][0][0] if key is not None else None
    return query.read(found[len(first) :]), reserved


def conflicts(fn):
    """Run ``fn`` (a change of a booking, in its transaction); a lock timeout or deadlock becomes
    ``TryAgain``, an overlapping host row ``SlotUnavailable`` (409s, not 500s)."""
    try:
        return fn()
    except IntegrityError as exc:
        if is_overlap(exc):
            raise SlotUnavailable() from None
        raise
    except DatabaseError as exc:
        if is_contention(exc):
            raise TryAgain() from None
        raise


def sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_overlap(exc: IntegrityError) -> bool:
    """The exclusion constraint refused an overlapping active host row."""
    return sqlstate(exc) == EXCLUSION_VIOLATION or "bookinghost_no_overlap" in str(exc)


def is_contention(exc: DatabaseError) -> bool:
    """A lock wait timed out, a deadlock was broken, a serialisation failed, or a statement was cancelled
    (``statement_timeout`` while it waited for a lock): retryable contention."""
    if sqlstate(exc) in CONTENTION:
        return True
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


def is_unavailable(exc: BaseException) -> bool:
    """The database went away or cannot take writes for now (``UNAVAILABLE``, ``UNAVAILABLE_CLASSES``), a
    transient condition a client rides out by sending the request again shortly. Also a connection that
    broke without an answer from the server, or was found closed (psycopg's ``OperationalError`` without a
    SQLSTATE: "server closed the connection unexpectedly", "the connection is closed", a failed connect),
    as long as that connection is in fact gone (``connection_gone``). psycopg raises the same error without a
    SQLSTATE for a query it cannot send ("number of parameters must be between 0 and 65535" with
    ``server_side_binding``): on a connection that is fine that is a bug every retry meets, a server error
    (logged with its traceback, mailed to ADMINS), not a 503 with ``Retry-After``."""
    if not isinstance(exc, DatabaseError):
        return False
    code = sqlstate(exc)
    if code is not None:
        return code in UNAVAILABLE or code.startswith(UNAVAILABLE_CLASSES)
    cause = exc.__cause__
    return psycopg is not None and isinstance(cause, psycopg.OperationalError) and connection_gone(cause)


def connection_gone(error: BaseException) -> bool:
    """The psycopg connection ``error`` was raised on (``raised_on``; else Django's) is closed or broken, or
    Django has none (a failed connect), as ``calendars.services.sync`` checks before it records a failed
    sync. Not Django's connection alone: a transaction's ``atomic`` closes a connection whose rollback fails
    and at once opens a new one (to restore autocommit), so by the time the error is answered Django's is a
    fresh, healthy connection."""
    raw = raised_on(error)
    if raw is None:
        raw = connection.connection
    return raw is None or bool(getattr(raw, "closed", False)) or bool(getattr(raw, "broken", False))


def raised_on(error: BaseException):
    """The psycopg connection of the deepest psycopg object (connection, cursor, pipeline) among the frames
    ``error`` went through; None if there is none (a failed connect)."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, psycopg.BaseConnection):
            found = owner
        elif isinstance(owner, psycopg.Cursor):
            found = owner.connection
        elif isinstance(owner, psycopg.Pipeline):
            found = owner._conn  # noqa: SLF001 - a pipeline's connection has no public name
        tb = tb.tb_next
    return found
