"""Plain-SQL inserts for the hot path (a booking's rows), the write side of ``routing.sqlrows``.

``insert`` writes new instances as ``bulk_create`` does (each field's ``pre_save`` and
``get_db_prep_save``, primary keys read back with ``RETURNING``); ``insert_many`` writes several lists, a
booking with its host rows, ledger entries and outbox messages, in as few round trips as PostgreSQL
allows (one when the booking's key was reserved first: ``key_statement``). Building an INSERT with the ORM's
compiler costs more CPU than the statement takes to run. Tests hold them to the ORM:
tests/booking/test_booking_sql_instances.py (JSON columns: tests/booking/test_booking_sqlwrites_json.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson
from django.db.models import Model

from routing import sqlrows

# psycopg caches its parsing of a statement only up to this many parameters; past it, every execution parses
# the statement's text again, in Python (about 0.2 ms for a booking's 70-odd: more than a statement costs),
# so ``insert_many`` packs its lists into statements under it, sent together.
CACHED_PARAMS = 50


# orjson writes dates, times and dataclasses, which ``json.dumps`` refuses: these go to ``json.dumps``.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_dumps(obj) -> bytes:
    """A JSON column's value as ``json.dumps`` gives it to PostgreSQL (non-string keys as strings), made by
    orjson: a booking's decision record (9.3 KB for 50 candidates) and outbox payloads took 145 µs with
    ``json.dumps`` and 17 µs with orjson, under the booking locks (2026-12-06). What orjson refuses (an
    integer past 64 bits, a date) goes to ``json.dumps``, which gives the same answer or error as before
    (orjson would still write a UUID, an Enum or a date as a key, which ``json.dumps`` refuses; nothing here
    stores one)."""
    try:
        return orjson.dumps(obj, option=_ORJSON)
    except orjson.JSONEncodeError:
        return json.dumps(obj).encode()


def _prepared(field, value, db):
    """``field.get_db_prep_save(value, db)``; a JSON field's value with the standard encoder is dumped by
    ``json_dumps`` (psycopg's ``Jsonb`` takes the function; Django's passes ``json.dumps``)."""
    prepared = field.get_db_prep_save(value, db)
    if getattr(prepared, "dumps", None) is json.dumps:  # psycopg's Jsonb wrapper from a plain JSONField
        prepared.dumps = json_dumps
    return prepared


class _NotSaved(ValueError):
    """A new instance points at an instance that has no key yet (and no statement gives it one)."""


def key_statement(model: type[Model], n: int = 1) -> tuple[str, list] | None:
    """A statement whose rows are ``n`` new primary keys for ``model`` from its column's sequence, for a
    caller that sends it with statements of its own (``sqlrows.batch``) and sets the keys on new instances
    before ``insert_many``: rows that point at them then need no ``RETURNING`` of another statement, and go
    with them in one round trip. None where keys come only from the insert (SQLite). A key taken and not
    used leaves a gap, as a rolled-back insert does."""
    db = sqlrows._db()
    if db.vendor != "postgresql":
        return None
    opts = model._meta
    return (
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [db.ops.quote_name(opts.db_table), opts.pk.column, int(n)],
    )


def returning(sql: str, column: str) -> str:
    """A write (``UPDATE``, ``DELETE``) as ``sqlrows.batch`` runs it: on PostgreSQL psycopg reads rows from
    every statement of a pipeline, so the write returns ``column``; SQLite reads none from a write (and has
    ``RETURNING`` only since 3.35)."""
    return f"{sql} RETURNING {column}" if sqlrows.vendor() == "postgresql" else sql


def insert(objs: list[Model]) -> list[Model]:
    """INSERT new instances of one model in one statement, as ``Model.objects.bulk_create(objs)`` would
    (no signals; ``auto_now``/``auto_now_add`` filled in; primary keys set on the objects, or written as
    given when every instance has one: ``key_statement``)."""
    if not objs:
        return objs
    db = sqlrows._db()
    if not db.features.can_return_rows_from_bulk_insert:  # SQLite < 3.35
        return type(objs[0]).objects.bulk_create(objs)
    sql, params = _values(objs, db)
    _saved(objs, [pk for (pk,) in sqlrows.rows(sql, params)], db)
    return objs


def insert_many(
    groups: list[list[Model]],
    *,
    first: Sequence[tuple[str, list]] = (),
    then: Sequence[tuple[str, list]] = (),
    commit: bool = False,
) -> None:
    """``insert`` for several lists of new instances, in order: a later list may point at an instance of
    an earlier one by a foreign key (a booking's host rows at the booking). On PostgreSQL consecutive lists
    share a statement, each an ``INSERT … RETURNING`` in a ``WITH`` clause (a key to a one-row list of the
    same statement is read from its ``RETURNING``), as long as the statement stays within ``CACHED_PARAMS``
    parameters; the statements go together in one round trip (``sqlrows.batch``) unless one needs a key
    that only an earlier one's ``RETURNING`` gives. Elsewhere one statement per list. A statement's
    constraints (e.g. the exclusion constraint on host rows) fail it as a whole, and its round trip.
    ``first`` and ``then``: statements of the caller's (``sqlrows.batch``: on PostgreSQL each returns rows)
    sent before the inserts, in their first round trip, and after them, in their last. ``commit``: the
    caller's last writes in its transaction, whose COMMIT may go with the last round trip
    (``sqlrows.batch``)."""
    groups = [objs for objs in groups if objs]
    db = sqlrows._db()
    if db.vendor != "postgresql":
        sqlrows.batch(first)
        for objs in groups:
            insert(objs)
        sqlrows.batch(then)
        return
    ready: list[list[tuple[list[Model], str, list]]] = []  # statements built, not sent yet
    batch: list[tuple[list[Model], str, list]] = []
    lead = list(first)  # goes with the first round trip

    def values(objs: list[Model], refs: dict[int, str]) -> tuple[str, list]:
        nonlocal ready, lead
        try:
            return _values(objs, db, refs)
        except _NotSaved:  # it needs a key that a statement built so far returns: send those first
            _send(ready, db, lead)
            ready, lead = [], []
            return _values(objs, db, refs)

    for objs in groups:
        sql, params = values(objs, _refs(batch, db))
        if batch and sum(len(p) for _, _, p in batch) + len(params) > CACHED_PARAMS:
            ready.append(batch)
            batch = []
            sql, params = values(objs, {})
        batch.append((objs, sql, params))
    if batch:
        ready.append(batch)
    _send(ready, db, lead, then, commit=commit)


def _refs(batch: list[tuple[list[Model], str, list]], db) -> dict[int, str]:
    """The one-row lists of a statement being built, as scalar subqueries on their ``RETURNING``."""
    quote = db.ops.quote_name
    return {
        id(objs[0]): f"(SELECT {quote(objs[0]._meta.pk.column)} FROM i{i})"
        for i, (objs, _, _) in enumerate(batch)
        if len(objs) == 1
    }


def _statement(batch: list[tuple[list[Model], str, list]], db) -> tuple[str, list]:
    """One list's INSERT as it is, several lists' as ``WITH i0 AS (…), … SELECT <list>, <key> …``."""
    if len(batch) == 1:
        _, sql, params = batch[0]
        return sql, params
    quote = db.ops.quote_name
    ctes = ", ".join(f"i{i} AS ({sql})" for i, (_, sql, _) in enumerate(batch))
    picks = " UNION ALL ".join(
        f"SELECT {i}, {quote(objs[0]._meta.pk.column)} FROM i{i}" for i, (objs, _, _) in enumerate(batch)
    )
    return f"WITH {ctes} {picks}", [p for _, _, params in batch for p in params]


def _send(statements: list[list[tuple[list[Model], str, list]]], db, first=(), then=(), commit=False) -> None:
    found = sqlrows.batch([*first, *(_statement(batch, db) for batch in statements), *then], commit=commit)
    found = found[len(first) : len(first) + len(statements)]
    for batch, returned in zip(statements, found, strict=True):
        if len(batch) == 1:
            _saved(batch[0][0], [pk for (pk,) in returned], db)
            continue
        keys: dict[int, list] = {i: [] for i in range(len(batch))}
        for i, key in returned:
            keys[i].append(key)
        for i, (objs, _, _) in enumerate(batch):
            _saved(objs, keys[i], db)
        for objs, _, _ in batch:  # keys read from another list's RETURNING
            for obj in objs:
                _take_saved_keys(obj)


def _values(objs: list[Model], db, refs: dict[int, str] | None = None) -> tuple[str, list]:
    """``INSERT INTO table (…) VALUES (…), … RETURNING pk`` for new instances of one model, and its
    parameters (each field's ``pre_save`` and ``get_db_prep_save``, as ``bulk_create``; not the columns a
    model lists in ``DATABASE_FILLED``, which database triggers write; the key only when every instance has
    one). A foreign key to an instance saved since it was assigned, or given its key, takes that key, as
    ``bulk_create`` does; one to an instance without a key takes the SQL expression ``refs`` gives for it
    (keyed by ``id(instance)``), or is refused."""
    model = type(objs[0])
    opts = model._meta
    filled = getattr(model, "DATABASE_FILLED", ())  # columns the database's triggers write
    keyed = objs[0].pk is not None
    fields = [f for f in opts.concrete_fields if (keyed or f is not opts.pk) and f.attname not in filled]
    quote = db.ops.quote_name
    params, tuples = [], []
    for obj in objs:
        if type(obj) is not model or not obj._state.adding or (obj.pk is not None) != keyed:
            raise ValueError(f"insert takes new {model.__name__} instances only, all with keys or none")
        marks = []
        for field in fields:
            related = _unsaved_related(obj, field)
            if related is not None and related.pk is not None:  # saved since: its key (as bulk_create)
                setattr(obj, field.name, related)
                related = None
            if related is not None:
                if refs is None or id(related) not in refs:
                    raise _NotSaved(f"{model.__name__}.{field.name}: the related object is not saved")
                marks.append(refs[id(related)])
                continue
            value = field.pre_save(obj, add=True)
            if hasattr(value, "resolve_expression"):
                raise ValueError(f"{model.__name__}.{field.name}: expressions are not supported here")
            params.append(_prepared(field, value, db))
            marks.append("%s")
        tuples.append("(" + ", ".join(marks) + ")")
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join(tuples)} RETURNING {quote(opts.pk.column)}"
    )
    return sql, params


def _unsaved_related(obj: Model, field):
    """The instance a foreign key of ``obj`` points at while that instance has no key yet, else None."""
    if not field.many_to_one or getattr(obj, field.attname) is not None or not field.is_cached(obj):
        return None
    return field.get_cached_value(obj)


def _take_saved_keys(obj: Model) -> None:
    """A foreign key to an instance saved since it was assigned takes its key (as ``bulk_create``)."""
    for field in obj._meta.concrete_fields:
        related = _unsaved_related(obj, field)
        if related is not None and related.pk is not None:
            setattr(obj, field.name, related)  # sets the key, keeps the instance


def _saved(objs: list[Model], pks: Sequence, db) -> None:
    if len(pks) != len(objs):
        raise RuntimeError(f"{len(objs)} rows inserted, {len(pks)} keys returned")
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, db.alias
