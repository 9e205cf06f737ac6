"""Plain-SQL reads for the hot path (every slot page and every booking).

Building and compiling a query with the ORM costs more CPU than running these small indexed selects, so the
loaders of ``routing.selectors`` and the ledger of ``routing.ledger`` write them out. The SQL is portable
(SQLite ≥ 3.30 and PostgreSQL: identifiers that are keywords quoted, ``FILTER`` on aggregates), parameters
go through the backend's own adapters, and values come back as the ORM would return them: ``date``/``time``
as Python objects (SQLite's declared-type converters, which Django registers, or psycopg), timestamps made
aware (SQLite stores naive UTC), and aggregates of timestamps, which SQLite returns as text, parsed.
``instances`` reads whole model instances the same way (the meeting type of every request, a pool's members):
the column list and the backend's converters are worked out once per model, and the instances equal what
``Model.from_db`` builds for a queryset (for a plain model they are put together directly). The inserts
that go with them are in ``routing.sqlwrites``.
Tests hold them to the ORM: tests/booking/test_booking_ledger_sql.py, tests/booking/test_booking_pool_rows.py,
tests/booking/test_booking_sql_instances.py.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.utils.dateparse import parse_datetime

try:
    import psycopg
    from psycopg.pq import Format
except ImportError:  # another PostgreSQL driver, or none: text results only
    psycopg = None


def _db():
    """The default database's wrapper for this thread, looked up once per call instead of once per attribute
    (``django.db.connection`` is a proxy that looks the wrapper up again on every attribute access)."""
    return connections[DEFAULT_DB_ALIAS]


def vendor() -> str:
    """The default database's vendor ("postgresql", "sqlite")."""
    return _db().vendor


def placeholders(values: Sequence) -> str:
    """``%s, %s, …`` for an ``IN (…)`` list (callers never pass an empty one)."""
    return ", ".join(["%s"] * len(values))


def among(values: Sequence) -> tuple[str, list]:
    """A membership test of integer keys and its parameters, for ``WHERE column {…}``: ``= ANY(%s)`` with
    one ``bigint[]`` on PostgreSQL, ``IN (%s, …)`` with the values elsewhere (callers never pass an empty
    list). On PostgreSQL the statement's text, and so its prepared statement, is the same whatever the
    list's length, and psycopg caches its parsing of a statement only up to 50 parameters: a 50-rep pool's
    lists went past that. The array goes as its text (``{1,2,…}``, cast in the statement): psycopg dumps a
    Python list element by element, 27 µs of CPU per 50 keys, and a booking sends a dozen such lists."""
    values = [int(v) for v in values]
    if _db().vendor == "postgresql":
        return "= ANY(%s::bigint[])", ["{" + ",".join(map(str, values)) + "}"]
    return f"IN ({placeholders(values)})", values


def among_subquery(values: Sequence) -> RawSQL:
    """``among`` for the ORM: integer keys as a subquery of ONE parameter, for ``field__in`` (a
    ``bigint[]`` as its text on PostgreSQL, a JSON array on SQLite). A list of keys is as many parameters,
    and with server-side binding PostgreSQL refuses a statement of more than 65,535 (a busy pool's
    dashboard, the booking list's attention filter)."""
    values = [int(v) for v in values]
    if _db().vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", ["{" + ",".join(map(str, values)) + "}"])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(values)])


def at(value: datetime) -> object:
    """A timestamp parameter as the backend stores it."""
    return _db().ops.adapt_datetimefield_value(value)


def on(value: date) -> object:
    """A date parameter as the backend stores it."""
    return _db().ops.adapt_datefield_value(value)


def day(value) -> date:
    """A date read back from a column without a declared type (a ``UNION`` whose first branch selects
    ``NULL`` there): SQLite hands over its text, PostgreSQL a ``date``."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def timestamps():
    """The converter for many timestamps read back (a loop over rows): ``aware`` where the backend may hand
    over text or naive values (SQLite), and nothing at all on PostgreSQL, where psycopg hands over every
    ``timestamptz`` as an aware datetime in the connection's zone, which Django keeps at UTC (it refuses a
    ``TIME_ZONE`` for a PostgreSQL database), so ``aware`` would return each one as it is: 0.45 µs a call, a
    third of the Python time a slot page of 50 reps × 14 days spent on its ~2,900 busy rows
    (2026-12-06)."""
    return _same if vendor() == "postgresql" else aware


def _same(value):
    return value


def aware(value):
    """A timestamp read back: aware, in UTC, whatever the backend handed over (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_db().timezone)
    return value


def _cursor(db):
    """The thread's one cursor for these statements, kept on its database wrapper while the connection lasts.
    A cursor per statement costs more than these small selects: a psycopg cursor sets up its own adapters and
    result loaders. Django's steps stay: the per-request health check, execute wrappers, database error
    translation and the debug cursor while queries are logged."""
    db.close_if_health_check_failed()
    db.ensure_connection()
    cursor = db.__dict__.get("_sqlrows_cursor")
    if _stale(cursor, db):
        cursor = db._sqlrows_cursor = db.cursor()
        db._sqlrows_binary = _binary_capable(cursor.cursor)
    return cursor


def _stale(cursor, db) -> bool:
    """A kept cursor that must be made again: none yet, one of an earlier connection, or one with or without
    the debug wrapper while queries are (not) logged."""
    return (
        cursor is None
        or cursor.cursor.connection is not db.connection
        or isinstance(cursor, CursorDebugWrapper) != db.queries_logged
    )


def _binary_capable(raw) -> bool:
    """A psycopg cursor that binds on the server (``server_side_binding=true``) can take its results in
    binary format; a client-binding one (Django's default) cannot."""
    if psycopg is None:
        return False
    return isinstance(raw, psycopg.Cursor) and not isinstance(raw, psycopg.ClientCursor)


def rows(sql: str, params: Sequence, *, text: bool = False) -> list[tuple]:
    """The rows of one statement. Where the cursor allows it (PostgreSQL with server-side binding) they
    come in binary format, read by psycopg's C loaders: in text format every timestamp goes through the
    pure-Python loader Django registers for text (4 % of a booking's time in a py-spy profile). Types come
    back the same (aware UTC timestamps, ``date``, ``time``, ``int``, ``Decimal``, ``str``), except JSON,
    parsed in binary format: ``text=True`` keeps text for rows handed to the ORM's converters."""
    db = _db()
    cursor = _cursor(db)
    if text or not db._sqlrows_binary:
        cursor.execute(sql, params)
        return cursor.fetchall()
    raw = cursor.cursor
    raw.format = Format.BINARY
    try:
        cursor.execute(sql, params)
    finally:
        raw.format = Format.TEXT
    return cursor.fetchall()


def batch(statements: Sequence[tuple[str, Sequence]], *, commit: bool = False) -> list[list[tuple]]:
    """The rows of several statements (each one that returns rows), in order (as ``rows``). On PostgreSQL
    (psycopg) they go in ONE round trip, in pipeline mode, yet each is a statement of its own: in READ
    COMMITTED each reads a snapshot taken when it starts, so statements queued behind one that waits for a
    lock see what committed while it waited. The first statement that fails fails the batch: PostgreSQL
    skips the rest, and its error is raised as ``rows`` would raise it (Django's exception classes).
    Elsewhere (SQLite) ``rows`` one statement after the other.

    ``commit``: the caller's last statements in its transaction; where ``may_commit`` allows it, the
    transaction's COMMIT goes in the same round trip (see there). Elsewhere it does nothing: the atomic block
    commits as usual."""
    db = _db()
    _cursor(db)  # connects (health check included) and learns whether results can come in binary
    piped = psycopg is not None and isinstance(db.connection, psycopg.Connection)
    commit = commit and piped and may_commit(db)
    if not piped or (len(statements) < 2 and not commit):
        return [rows(sql, params) for sql, params in statements]
    cursors = db.__dict__.get("_sqlrows_batch") or [None]
    if _stale(cursors[0], db):
        cursors = db._sqlrows_batch = []
    while len(cursors) < len(statements):
        cursors.append(db.cursor())
        if db._sqlrows_binary:
            cursors[-1].cursor.format = Format.BINARY
    used = cursors[: len(statements)]
    with db.wrap_database_errors, _pipeline(db.connection) as pipeline:
        for cursor, (sql, params) in zip(used, statements, strict=True):
            cursor.execute(sql, params)
        # one Sync after the statements: PostgreSQL runs them and answers in one go; the first that failed
        # is raised here (with ``commit``, psycopg queues the COMMIT before the Sync)
        if commit:
            db.connection.commit()
        else:
            pipeline.sync()
        return [cursor.fetchall() for cursor in used]


def may_commit(db=None) -> bool:
    """Whether ``batch(…, commit=True)`` may end the transaction itself: inside an atomic block whose
    outermost block is durable (``transaction.atomic(durable=True)``: no caller's transaction around it, a
    test case's included) and opened the transaction (not one a caller began by turning autocommit off),
    with no savepoint open (an inner block's release would follow the COMMIT), not marked for rollback.
    Where rows are written under locks that other transactions queue for (a booking's rep locks), the
    COMMIT's own round trip is time under the locks: on a busy machine each round trip waits for a core
    twice, the server's and the client's. When the atomic block ends, Django's commit finds no transaction
    open (psycopg sends no COMMIT then) and runs the ``on_commit`` callbacks as usual; a statement run in
    between would start a transaction of its own, so the caller sends nothing more before its block ends
    (and registers its callbacks before, so that a failed batch discards them)."""
    db = db or _db()
    blocks = db.atomic_blocks
    return bool(
        db.in_atomic_block
        and blocks
        and blocks[0].durable
        and db.commit_on_exit
        and not any(db.savepoint_ids)
        and not db.needs_rollback
    )


if psycopg is not None:

    class _Synced(psycopg.Pipeline):
        """psycopg's pipeline ends with a Sync of its own, and waits for its answer, even when the caller's
        ``sync()`` (or ``commit()``) has read every result already: one more round trip per batch, 0.09 ms
        on an idle machine (a batch of two ``SELECT 1`` took 0.19 ms, one ``SELECT 1`` 0.09 ms) and a wait
        for a core on each side on a busy one, under the rep locks too. This one leaves it out when the
        block ends without an error and nothing is pending. After an error it ends as psycopg's does: a
        statement that failed while others waited (a booking's insert queued behind a conflicting one, then
        refused by the exclusion constraint) can leave answers unread that psycopg's own ending collects;
        skipping it there left the connection waiting forever on its rollback (a concurrency test hung in
        about one run in three)."""

        _clean = False

        def __exit__(self, exc_type, exc_val, exc_tb):
            self._clean = exc_type is None
            return super().__exit__(exc_type, exc_val, exc_tb)

        def _exit_gen(self):
            if self._clean and not (self.command_queue or self.result_queue):
                return
            yield from super()._exit_gen()


@contextmanager
def _pipeline(conn) -> Iterator:
    """``conn.pipeline()`` with ``_Synced`` (what psycopg's does, with that class). psycopg keeps its
    pipeline in a private attribute; where that is not as expected (another version), or a pipeline is open
    already, psycopg's own (tests/booking/test_booking_round_trips.py counts the Syncs)."""
    if getattr(conn, "_pipeline", True) is not None or not hasattr(psycopg.Pipeline, "_exit_gen"):
        with conn.pipeline() as pipeline:
            yield pipeline
        return
    pipeline = conn._pipeline = _Synced(conn)
    try:
        with pipeline:
            yield pipeline
    finally:
        conn._pipeline = None


@dataclass(frozen=True)
class _Columns:
    """How to read one model's concrete fields: ``{alias}.col, …`` and, per column, the converters the ORM's
    compiler would apply (the backend's, e.g. SQLite's aware datetimes, then the field's, e.g. JSON)."""

    model: type[Model]
    select: str  # with "{alias}" for the table alias
    attnames: tuple[str, ...]
    converters: tuple[tuple[int, object, tuple], ...]  # (position, Col expression, converters)
    plain: bool  # ``Model.__init__`` would only store the values (see ``_plain``)

    def build(self, values: Sequence, db, *, plain: bool = False) -> Model:
        """The instance ``Model.from_db`` builds. With ``plain`` (``self.plain`` and no ``pre_init`` or
        ``post_init`` receiver for the model: the caller asks once per statement) it is put together
        directly — its state, then the values in its ``__dict__`` — which is all ``Model.__init__`` does
        for such a model, at a third of the cost: a 50-rep pool's members (100 instances) on every
        booking and slot page."""
        values = list(values)
        for i, expression, converters in self.converters:
            for converter in converters:
                values[i] = converter(values[i], expression, db)
        if not plain:
            return self.model.from_db(db.alias, self.attnames, values)
        instance = Model.__new__(self.model)
        state = instance._state = ModelState()
        state.adding, state.db = False, db.alias
        instance.__dict__.update(zip(self.attnames, values, strict=True))
        return instance

    def receivers(self) -> bool:
        return pre_init.has_listeners(self.model) or post_init.has_listeners(self.model)


def _plain(model: type[Model]) -> bool:
    """Whether ``Model.__init__`` with every field's value only stores them: the model overrides neither
    ``__init__`` nor ``from_db``, and every field's attribute is Django's plain one (a foreign key's only
    drops a cached related instance when set, and a new instance has none)."""
    if model.__init__ is not Model.__init__ or model.from_db.__func__ is not Model.from_db.__func__:
        return False
    return all(
        type(inspect.getattr_static(model, f.attname)) in (DeferredAttribute, ForeignKeyDeferredAttribute)
        for f in model._meta.concrete_fields
    )


_COLUMNS: dict[tuple[type[Model], str], _Columns] = {}


def _columns(model: type[Model], db) -> _Columns:
    key = (model, db.vendor)
    if key not in _COLUMNS:
        fields = model._meta.concrete_fields
        quote = db.ops.quote_name
        converters = []
        for i, field in enumerate(fields):
            expression = field.get_col(model._meta.db_table)
            found = db.ops.get_db_converters(expression) + expression.get_db_converters(db)
            if found:
                converters.append((i, expression, tuple(found)))
        _COLUMNS[key] = _Columns(
            model,
            ", ".join(f"{{alias}}.{quote(f.column)}" for f in fields),
            tuple(f.attname for f in fields),
            tuple(converters),
            _plain(model),
        )
    return _COLUMNS[key]


def instances(
    model: type[Model], where: str, params: Sequence, *, related: str | None = None, order_by: str = ""
) -> list[Model]:
    """Instances of ``model`` (table alias ``t``) matching the SQL condition ``where``, as a queryset with
    ``select_related(related)`` would return them. ``related`` names a non-null foreign key (alias ``r``,
    joined with INNER JOIN like the ORM does for one); ``order_by`` is SQL over the aliases."""
    db = _db()
    own = _columns(model, db)
    quote = db.ops.quote_name
    select, source = own.select.format(alias="t"), f"{quote(model._meta.db_table)} t"
    fk = model._meta.get_field(related) if related else None
    if fk is not None:
        if fk.null or not fk.many_to_one:
            raise ValueError(f"{model.__name__}.{related} is not a non-null foreign key")
        other = _columns(fk.related_model, db)
        select += ", " + other.select.format(alias="r")
        joined, target = quote(fk.related_model._meta.db_table), quote(fk.target_field.column)
        source += f" INNER JOIN {joined} r ON r.{target} = t.{quote(fk.column)}"
    sql = f"SELECT {select} FROM {source} WHERE {where}" + (f" ORDER BY {order_by}" if order_by else "")
    width = len(own.attnames)
    plain = own.plain and not own.receivers()
    plain_other = fk is not None and other.plain and not other.receivers()
    found = []
    # The ORM's converters (a JSON field's) expect Django's text loaders' values; without any, binary results:
    # psycopg's C loaders instead of Django's pure-Python text loader for timestamps (with the direct build,
    # a 50-rep pool's members 0.59 -> 0.31 ms of CPU)
    text = bool(own.converters) or (fk is not None and bool(other.converters))
    for row in rows(sql, params, text=text):
        instance = own.build(row[:width], db, plain=plain)
        if fk is not None:
            setattr(instance, fk.name, other.build(row[width:], db, plain=plain_other))
        found.append(instance)
    return found
