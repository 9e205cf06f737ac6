"""PostgreSQL specifics of the booking write path: the exclusion constraint's exact definition (btree_gist,
per rep, buffered range, active rows only), and the advisory locks (late, once, sorted, with a lock timeout,
transaction-scoped)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from booking.models import Booking, BookingHost, IdempotencyKey
from booking.services import booking_create, locking
from routing import selectors, sqlrows
from routing.core import Interval
from tests.booking.booking_factories import (
    NOW,
    bulk_bookings,
    create_keyed,
    make_meeting_type,
    make_pool,
    make_rep,
)
from tests.booking.booking_race import lock_held_elsewhere

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("clock")]
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


def _create(meeting_type, start=START, email="pat@example.org"):
    return booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email=email, timezone="Europe/Berlin"
    )


@pytest.mark.django_db
def test_exclusion_constraint_definition():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'")
        assert cursor.fetchone() == (1,)
        cursor.execute(
            "SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
            ["bookinghost_no_overlap"],
        )
        kind, definition = cursor.fetchone()
    assert kind == "x"  # exclusion
    assert definition == (  # led by the range (migration 0011): the pool-wide reads near a booking
        "EXCLUDE USING gist (tstzrange(blocked_start, blocked_end, '[)'::text) WITH &&, rep_id WITH =) "
        "WHERE (active)"
    )


@pytest.mark.django_db
def test_constraint_covers_the_buffers_and_only_active_rows():
    rep = make_rep("Buf")
    meeting_type = make_meeting_type(
        make_pool("round_robin", [rep]), buffer_before_minutes=15, buffer_after_minutes=15
    )
    first = Booking.objects.get(pk=_create(meeting_type).body["id"])
    host = first.hosts.get()
    assert host.blocked_end == first.end + dt.timedelta(minutes=15)
    second = Booking.objects.create(
        meeting_type=meeting_type,
        pool=meeting_type.pool,
        start=first.end + dt.timedelta(minutes=5),
        end=first.end + dt.timedelta(minutes=35),
        prospect_name="X",
        prospect_email="x@example.org",
        prospect_timezone="UTC",
        manage_token_hash="1" * 64,
    )
    # the meetings themselves do not overlap; only the first one's after-buffer does
    overlapping = dict(
        booking=second,
        rep=rep,
        blocked_start=second.start - dt.timedelta(minutes=1),
        blocked_end=second.end,
    )
    with pytest.raises(IntegrityError, match="bookinghost_no_overlap"), transaction.atomic():
        BookingHost.objects.create(**overlapping)
    BookingHost.objects.create(**overlapping, active=False)  # inactive rows are not constrained
    other_rep = make_rep("Other")
    BookingHost.objects.create(**{**overlapping, "rep": other_rep})  # nor another rep's


@pytest.mark.django_db
def test_locks_are_taken_late_once_sorted_with_a_timeout(settings):
    settings.BOOKING_LOCK_TIMEOUT_MS = 1234
    reps = [make_rep(f"L{i}") for i in range(4)]
    # members are ranked in reverse id order: the locks must still be taken in ascending id order
    pool = make_pool("first_available", list(reversed(reps)))
    meeting_type = make_meeting_type(pool)
    with CaptureQueriesContext(connection) as queries:
        _create(meeting_type)
    sql = [q["sql"] for q in queries.captured_queries]
    lock_statements = [i for i, s in enumerate(sql) if "pg_advisory_xact_lock" in s]
    assert len(lock_statements) == 1, "all rep locks are taken in one statement, once"
    statement = sql[lock_statements[0]]
    assert sql[lock_statements[0] - 1] == "SELECT set_config('lock_timeout', '1234ms', true)"
    (keys,) = re.findall(r"pg_advisory_xact_lock\(k\)\) FROM unnest\('\{([\d,]+)\}'::bigint\[\]\)", statement)
    locked = [int(n) - locking.NAMESPACE for n in keys.split(",")]
    assert locked == sorted(r.pk for r in reps)
    # late: after what the lock does not guard (members, working hours, synced busy rows) is read, before
    # what bookings change (the pool's booking host rows around the slot, the fairness ledger) is read and
    # the rows are written
    first_busy_read = next(i for i, s in enumerate(sql) if "calendars_busyinterval" in s)
    hosts_read = next(i for i, s in enumerate(sql) if "h.blocked_end FROM booking_bookinghost h" in s)
    ledger_read = next(i for i, s in enumerate(sql) if "FROM routing_ledgerentry" in s)
    first_insert = next(i for i, s in enumerate(sql) if 'INSERT INTO "booking_booking"' in s)
    assert first_busy_read < lock_statements[0] < hosts_read < ledger_read < first_insert


ADVISORY = (
    "SELECT (classid::bigint << 32) | objid::bigint, granted FROM pg_locks "
    "WHERE locktype = 'advisory' AND pid = %s ORDER BY 1"
)


def _waiting(other, work) -> tuple[threading.Thread, dict, list]:
    """Start ``work()`` in a transaction of a thread with its own connection, and return once that thread
    waits for a lock (``other`` looks): the thread, its outcome (``result``) and its advisory locks then."""
    outcome = {}

    def run():
        from django.db import connection as own

        try:
            with transaction.atomic():
                own.ensure_connection()
                outcome["pid"] = own.connection.info.backend_pid
                outcome["result"] = work()
        finally:
            own.close()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 15
    while True:
        waiting = "pid" in outcome and other.execute(ADVISORY, [outcome["pid"]]).fetchall()
        if waiting and any(not granted for _, granted in waiting):
            return worker, outcome, waiting
        assert time.monotonic() < deadline, "the booking never waited for the lock held elsewhere"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_the_lock_statement_takes_the_locks_in_ascending_order_and_holds_them(settings):
    """Rep 9's lock is held elsewhere: a booking's locks on 9, 3 and 5 hold 3 and 5 while it waits for 9
    (ascending order), and all three once 9 is free, until the transaction ends."""
    settings.BOOKING_LOCK_TIMEOUT_MS = 20_000
    key = {rid: locking.NAMESPACE | rid for rid in (3, 5, 9)}

    def book_locks():
        locking.lock_reps([9, 3, 5])
        return sqlrows.rows(ADVISORY, [connection.connection.info.backend_pid])

    with lock_held_elsewhere(9) as other:
        worker, outcome, waiting = _waiting(other, book_locks)
        assert waiting == [(key[3], True), (key[5], True), (key[9], False)]
        other.commit()  # frees rep 9
        worker.join(15)
    assert outcome["result"] == [(key[3], True), (key[5], True), (key[9], True)]


@pytest.mark.django_db(transaction=True)
def test_reads_sent_with_the_locks_see_what_committed_while_the_locks_waited(settings):
    """A booking's rep locks and its reads of the pool's bookings go in one round trip (``load_locked``):
    the reads must see a booking committed while the locks waited (each statement reads its own snapshot),
    or the booking would give a rep a slot just taken. Rep A's lock is held elsewhere; meanwhile A gets a
    booking at the slot, committed; then A's lock is freed."""
    settings.BOOKING_LOCK_TIMEOUT_MS = 20_000
    ana, ben = make_rep("A"), make_rep("B")
    meeting_type = make_meeting_type(make_pool("first_available", [ana, ben]))
    end = START + dt.timedelta(minutes=30)
    calendars = selectors.load_pool_calendars(
        meeting_type.pool, meeting_type, now=NOW, window=Interval(START, end), probe=(START, end)
    )

    def load():
        state, _ = locking.load_locked(calendars, now=NOW, taken=(START, end))
        return {m.rep.rep_id: m.rep.busy for m in state.spec.members}

    with lock_held_elsewhere(ana.pk) as other:
        worker, outcome, _ = _waiting(other, load)
        bulk_bookings(meeting_type, [ana], [START])  # committed (autocommit) while the locks wait
        other.commit()  # frees A
        worker.join(15)
    assert Interval(START, end) in outcome["result"][ana.pk]
    assert outcome["result"][ben.pk] == ()


@pytest.mark.django_db(transaction=True)
def test_locks_and_lock_timeout_end_with_the_transaction():
    rep = make_rep("T")
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        before = cursor.fetchone()[0]
    _create(meeting_type)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == before  # SET LOCAL did not outlive the booking transaction
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_exclusion_violation_in_the_service_is_a_409_not_a_500(monkeypatch):
    """With the application check bypassed (locks off, the pool's busy time hidden), the constraint
    still refuses the second booking, and the service turns that into ``SlotUnavailable``."""
    from booking.errors import SlotUnavailable

    rep = make_rep("C")
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    _create(meeting_type)
    monkeypatch.setattr(locking, "LOCKS_ENABLED", False)
    monkeypatch.setattr("booking.services.routing.hosts_busy_live", lambda *a, **k: set(), raising=True)
    # hide existing host rows from the availability checks (the fast-fail probe and the pool's loader)
    for name in ("PROBE_SQL", "HOSTS_SQL", "HOSTS_BUSY_SQL", "HOSTS_COUNTED_SQL"):
        monkeypatch.setattr(selectors, name, getattr(selectors, name).replace("WHERE", "WHERE 1 = 0 AND"))
    seen = []
    real_is_overlap = locking.is_overlap
    monkeypatch.setattr(locking, "is_overlap", lambda exc: seen.append(exc) or real_is_overlap(exc))
    with pytest.raises(SlotUnavailable):
        _create(meeting_type, email="second@example.org")
    monkeypatch.undo()
    assert len(seen) == 1 and "bookinghost_no_overlap" in str(seen[0])  # the database refused it
    assert BookingHost.objects.filter(active=True).count() == 1


@pytest.mark.django_db
def test_a_keyed_booking_writes_everything_in_one_round_trip_after_its_locks(monkeypatch):
    """Under the rep locks a booking makes two round trips: the locks with the reads under them and its key
    (``load_locked``), then every row it writes, the Idempotency-Key's row with its stored response
    included (``sqlwrites.insert_many``), and its COMMIT where the transaction is the booking's own
    (not in this test case's: test_booking_round_trips.py). Before them, the key's turn reads the
    stored response with its lock; the key's row, response and all, replaces an expired one in the last
    round trip, with the booking's rows (no round trip of its own). The response replays."""
    meeting_type = make_meeting_type(make_pool("first_available", [make_rep("K"), make_rep("L")]))
    trips: list[list[str]] = []
    batch = sqlrows.batch

    def counted(statements, **options):
        trips.append([sql for sql, _ in statements])
        return batch(statements, **options)

    monkeypatch.setattr(sqlrows, "batch", counted)
    made = create_keyed(meeting_type, "one-trip")
    monkeypatch.undo()
    # before the locks: the key's lock with its stored response, the pool's roster (built: a new pool),
    # phase one; then the locks
    heads = ["SELECT pg_try_advisory_xact_lock", "SELECT count(*)", "SELECT c.rep_id"]
    assert [sqls[0].strip().startswith(head) for sqls, head in zip(trips, heads, strict=False)] == [True] * 3
    assert trips[0][1].startswith("SELECT request_hash")
    locked = next(i for i, sqls in enumerate(trips) if any("pg_advisory_xact_lock(k)" in sql for sql in sqls))
    assert locked == 3 and any(sql.startswith("SELECT nextval") for sql in trips[locked])
    written = trips[locked + 1 :]
    assert len(written) == 1  # nothing else before the commit
    delete, *inserts = written[0]  # the expired row out, then the booking's rows with the key's
    assert delete.startswith("DELETE FROM booking_idempotencykey")
    assert [sql.split(" (")[0] for sql in inserts] == ["WITH i0 AS", "WITH i0 AS"]
    assert 'INSERT INTO "booking_booking"' in inserts[0]
    assert all(
        f'INSERT INTO "{table}"' in inserts[1]
        for table in ("booking_outboxmessage", "booking_idempotencykey")
    )
    replayed = create_keyed(meeting_type, "one-trip")
    assert replayed.replayed and replayed.body == made.body and Booking.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert (row.booking_id, row.status_code) == (made.body["id"], 201) and row.sealed_response
