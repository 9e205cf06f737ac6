"""``routing.sqlrows.batch`` on PostgreSQL, read off libpq's protocol trace: a batch is one round trip (one
Sync, nothing sent after its answer), and with ``commit`` the transaction's COMMIT goes in it, where the
transaction is the caller's durable block (a booking's last writes under its rep locks), and nowhere else."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from contextlib import contextmanager

import psycopg
import pytest
from django.core import mail
from django.db import DataError, connection, transaction
from psycopg.pq import Trace

from booking.errors import SlotUnavailable
from booking.models import Booking, BookingHost
from booking.services import booking_create, locking
from routing import selectors, sqlrows
from routing.models import Rep
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clock")]
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


@contextmanager
def traced():
    """The protocol messages of the default connection meanwhile, as (``F`` or ``B``, type, the rest).
    Prepared statements are dropped first (psycopg forgets its own on ``DEALLOCATE ALL``), so that every
    statement's text shows in a Parse, whatever ran on the connection before."""
    sqlrows.rows("SELECT 1", [])  # connected
    connection.connection.execute("DEALLOCATE ALL")
    messages: list[tuple[str, str, str]] = []
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            yield messages
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace.read().decode().splitlines():
                if not line.startswith(("F\t", "B\t")):  # a statement's text goes on
                    side, kind, rest = messages.pop()
                    messages.append((side, kind, f"{rest} {line.strip()}"))
                    continue
                side, _, kind, *rest = line.split("\t")
                messages.append((side, kind, " ".join(rest).strip()))


def syncs(messages) -> int:
    return sum(1 for side, kind, _ in messages if side == "F" and kind == "Sync")


def statements(messages) -> list[str]:
    """The SQL of every statement sent (extended protocol's Parse: ``"name" "sql" n``, or a simple Query)."""
    sent = []
    for side, kind, rest in messages:
        if side == "F" and kind in ("Parse", "Query"):
            sent.append(
                re.fullmatch(r'"[^"]*" "(.*)" \d+(?: \S+)*', rest).group(1) if kind == "Parse" else rest
            )
    return sent


def _rename(rep: Rep, name: str) -> tuple[str, list]:
    return "UPDATE routing_rep SET name = %s WHERE id = %s RETURNING id", [name, rep.pk]


def _name_seen_elsewhere(rep: Rep) -> str | None:
    """The rep's name as another connection sees it (what is committed; None: not even the rep)."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    ) as other:
        found = other.execute("SELECT name FROM routing_rep WHERE id = %s", [rep.pk]).fetchone()
    return found[0] if found else None


@pytest.mark.django_db
def test_a_batch_is_one_round_trip():
    """psycopg's own pipeline sends a second Sync when it ends, and waits for its answer (a batch of two
    ``SELECT 1`` took twice one's time); ``batch`` sends one."""
    with traced() as messages:
        found = sqlrows.batch([("SELECT 1", []), ("SELECT %s::int", [2]), ("SELECT 3", [])])
    assert found == [[(1,)], [(2,)], [(3,)]]
    assert syncs(messages) == 1
    sides = [side for side, _, _ in messages]
    assert sides[-1] == "B" and "F" not in sides[sides.index("B") :]  # nothing sent after the answer came
    assert messages[-1][1] == "ReadyForQuery"


@pytest.mark.django_db(transaction=True)
def test_a_failed_statement_fails_its_batch_and_the_connection_goes_on():
    """After an error the pipeline ends as psycopg's own does, with a Sync of its own that collects every
    answer still due: a booking refused by the exclusion constraint after waiting for a conflicting one
    could otherwise leave answers unread, and the connection then waited forever on its rollback (the
    concurrency suite's constraint-only race hung in about one run in three)."""
    with traced() as messages, pytest.raises(DataError):
        sqlrows.batch([("SELECT 1", []), ("SELECT 1 / 0", []), ("SELECT 2", [])])
    # the error surfaces at the batch's Sync, or earlier (psycopg reads answers while it sends, when they
    # came already: on a busy machine): either way every Sync's answer was read before the batch ended
    ready = sum(1 for side, kind, _ in messages if side == "B" and kind == "ReadyForQuery")
    assert syncs(messages) in (1, 2) and ready == syncs(messages), messages
    assert sqlrows.batch([("SELECT 3", []), ("SELECT 4", [])]) == [[(3,)], [(4,)]]
    assert connection.connection._pipeline is None


@pytest.mark.django_db(transaction=True)
def test_commit_goes_with_the_last_batch_of_a_durable_block():
    rep = make_rep("Before")
    committed: list[str] = []
    tracer = traced()
    with transaction.atomic(durable=True):
        sqlrows.rows(
            "SELECT 0", []
        )  # the transaction has begun (psycopg's BEGIN has a round trip of its own)
        transaction.on_commit(lambda: committed.append("after"))
        assert sqlrows.may_commit()
        messages = tracer.__enter__()  # until after the block's end
        found = sqlrows.batch([_rename(rep, "After"), ("SELECT 1", [])], commit=True)
        assert _name_seen_elsewhere(rep) == "After"  # committed with the batch's round trip
        assert committed == []  # the callbacks wait for the block's end
    tracer.__exit__(None, None, None)
    assert found == [[(rep.pk,)], [(1,)]] and committed == ["after"]
    assert syncs(messages) == 1 and statements(messages)[-1] == "COMMIT"
    assert messages[-1][:2] == ("B", "ReadyForQuery")  # Django's commit sent nothing: none was due
    rep.refresh_from_db()
    assert rep.name == "After"


@pytest.mark.django_db(transaction=True)
def test_no_commit_under_a_savepoint():
    """An inner block's savepoint would be released after the COMMIT, in no transaction: ``commit`` waits
    for the durable block's end there (a block without a savepoint does not stop it)."""
    rep = make_rep("Before")
    with transaction.atomic(durable=True):
        with transaction.atomic(savepoint=False):
            assert sqlrows.may_commit()
        with transaction.atomic():
            assert not sqlrows.may_commit()
            sqlrows.batch([_rename(rep, "After")], commit=True)
            assert _name_seen_elsewhere(rep) == "Before"
    assert _name_seen_elsewhere(rep) == "After"


@pytest.mark.django_db(transaction=True)
def test_no_commit_in_a_transaction_begun_by_turning_autocommit_off():
    rep = make_rep("Before")
    transaction.set_autocommit(False)
    try:  # (without a savepoint of its own, which would stop it anyway)
        with transaction.atomic(durable=True, savepoint=False):
            assert not sqlrows.may_commit()
            sqlrows.batch([_rename(rep, "After")], commit=True)
        assert _name_seen_elsewhere(rep) == "Before"  # the caller's transaction is still open
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    rep.refresh_from_db()
    assert rep.name == "Before"


@pytest.mark.django_db
def test_no_commit_inside_a_callers_transaction():
    """The test case's transaction is around this one: ``commit`` does nothing (nothing of the test is
    committed, not even the rep), and the rollback at the end of the test still undoes it all."""
    rep = make_rep("Before")
    with traced() as messages, transaction.atomic():
        assert not sqlrows.may_commit()
        sqlrows.batch([_rename(rep, "After")], commit=True)
    assert "COMMIT" not in statements(messages)
    assert _name_seen_elsewhere(rep) is None
    assert connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_a_booking_commits_with_its_rows():
    """A booking's writes and its COMMIT in one round trip (under the rep locks), nothing after it; the
    outbox's deliveries run after it (confirmation emails sent)."""
    meeting_type = make_meeting_type(make_pool("first_available", [make_rep("A"), make_rep("B")]))
    with traced() as messages:
        booking_create(
            meeting_type=meeting_type,
            start=START,
            name="Pat",
            email="pat@example.org",
            timezone="Europe/Berlin",
        )
    sent = statements(messages)
    assert sent.count("COMMIT") == 1  # (the outbox's deliveries after it run in autocommit)
    sync_at = [i for i, (side, kind, _) in enumerate(messages) if side == "F" and kind == "Sync"]
    commit_at = next(i for i, m in enumerate(messages) if m[1] == "Parse" and statements([m]) == ["COMMIT"])
    end = next(i for i in sync_at if i > commit_at)
    start = max(i for i in sync_at if i < commit_at)
    trip = statements(messages[start:end])  # the COMMIT's round trip
    assert trip[0].startswith("WITH i0 AS (INSERT INTO")  # the booking, its host rows and ledger entries
    assert trip[1].startswith('INSERT INTO "booking_outboxmessage"') and trip[2:] == ["COMMIT"]
    assert Booking.objects.count() == 1 and len(mail.outbox) >= 2


@pytest.mark.django_db(transaction=True)
def test_a_refused_write_rolls_back_and_delivers_nothing(monkeypatch):
    """With the application check bypassed (locks off, the pool's busy time hidden), the exclusion constraint
    refuses the second booking in the round trip that would have committed it: a 409, no rows, no emails."""
    rep = make_rep("C")
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email="pat@example.org", timezone="Europe/Berlin"
    )
    mail.outbox.clear()
    monkeypatch.setattr(locking, "LOCKS_ENABLED", False)
    for name in ("PROBE_SQL", "HOSTS_SQL", "HOSTS_BUSY_SQL", "HOSTS_COUNTED_SQL"):
        monkeypatch.setattr(selectors, name, getattr(selectors, name).replace("WHERE", "WHERE 1 = 0 AND"))
    with pytest.raises(SlotUnavailable):
        booking_create(
            meeting_type=meeting_type,
            start=START,
            name="Sam",
            email="sam@example.org",
            timezone="Europe/Berlin",
        )
    monkeypatch.undo()
    assert Booking.objects.count() == 1 and BookingHost.objects.count() == 1
    assert mail.outbox == [] and not connection.in_atomic_block
