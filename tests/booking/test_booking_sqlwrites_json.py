"""``routing.sqlwrites.json_dumps`` writes the booking's JSON columns with orjson on PostgreSQL: it must
mean what ``json.dumps`` means, refuse what it refuses, and store what the ORM stores."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from booking.models import OutboxMessage
from routing import sqlwrites
from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


ODD_JSON = [
    {"ünï": "cödé — ✓", "n": 1.5, "big": 2**70, "none": None, "t": True, "nested": [1, [2, {"3": 4}]]},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    [(1, 2), ("a", "b")],
    "plain",
    -(2**63),
    0.1 + 0.2,
]


@pytest.mark.parametrize("value", ODD_JSON)
def test_json_dumps_means_what_json_dumps_means(value):
    assert json.loads(sqlwrites.json_dumps(value)) == json.loads(json.dumps(value))


def test_json_dumps_refuses_what_json_dumps_refuses():
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for value in ({"when": when.date()}, [when], {"at": when.time()}, {1.0j: 1}, object()):
        with pytest.raises(TypeError):
            json.dumps(value)
        try:
            sqlwrites.json_dumps(value)
        except TypeError:
            continue
        raise AssertionError(f"{value!r}: json.dumps refuses it, json_dumps did not")


@pytest.mark.parametrize("payload", ODD_JSON)
def test_a_json_column_stores_what_the_orm_stores(payload, monkeypatch):
    """Stored by ``insert`` (``json_dumps`` on PostgreSQL) and by ``bulk_create`` (``json.dumps``): equal
    rows."""
    dumped = []
    real = sqlwrites.json_dumps
    monkeypatch.setattr(sqlwrites, "json_dumps", lambda obj: dumped.append(obj) or real(obj))
    rep = make_rep()
    start = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    booking = bulk_bookings(make_meeting_type(make_pool("ranked", [rep])), [rep], [start])[0]
    orm, sql = (OutboxMessage(event="e", handler="h", booking=booking, payload=payload) for _ in "ab")
    OutboxMessage.objects.bulk_create([orm])
    sqlwrites.insert([sql])
    stored = OutboxMessage.objects.filter(pk__in=[orm.pk, sql.pk]).order_by("pk")
    assert stored[0].payload == stored[1].payload
    assert dumped == ([payload] if connection.vendor == "postgresql" else [])  # SQLite: Django's own text
