"""Plain-SQL reads for the hot path (every slot page and every booking).

Building and compiling a query with the ORM costs more CPU than running these small indexed selects, so the
loaders of ``routing.selectors`` and the ledger of ``routing.ledger`` write them out. The SQL is portable
(SQLite ≥ 3.30 and PostgreSQL: identifiers that are keywords quoted, ``FILTER`` on aggregates), parameters
go through the backend's own adapters, and values come back as the ORM would return them: ``date``/``time``
as Python objects (SQLite's declared-type converters, which Django registers, or psycopg), timestamps made
aware (SQLite stores naive UTC), and aggregates of timestamps, which SQLite returns as text, parsed.
Tests hold them to the ORM: tests/booking/test_booking_ledger_sql.py, tests/booking/test_booking_pool_rows.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime


def placeholders(values: Sequence) -> str:
    """``%s, %s, …`` for an ``IN (…)`` list (callers never pass an empty one)."""
    return ", ".join(["%s"] * len(values))


def at(value: datetime) -> object:
    """A timestamp parameter as the backend stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def on(value: date) -> object:
    """A date parameter as the backend stores it."""
    return connection.ops.adapt_datefield_value(value)


def aware(value):
    """A timestamp read back: aware, in UTC, whatever the backend handed over (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=connection.timezone)
    return value


def rows(sql: str, params: Sequence) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
