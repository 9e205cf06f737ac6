"""Races of the side effects of booking changes (PostgreSQL, threads, interleavings forced with
``threading.Event`` hooks rather than hoped for): calendar writes of one booking delivered out of order, a
batch of outbox rows whose lease ran out before a row's turn, a disconnect while a sync runs. Each test
failed before the fix (``writeback.booking_events_sync`` reads the booking again after writing,
``outbox._still_mine``, ``sync.busy_apply`` locks and re-reads the calendar); the docstrings say what went
wrong then."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connections

from booking import outbox
from booking.models import Booking, OutboxMessage
from booking.services import booking_cancel, booking_create, booking_reschedule
from calendars.models import BookingEvent, Calendar
from calendars.services import writeback
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_booking_rep

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CALENDAR_HANDLER = "calendars.outbox.write_booking_to_calendars"
WAIT = 15


def in_thread(name: str, fn) -> tuple[threading.Thread, dict]:
    """Run ``fn`` in a thread of its own (own DB connection, closed at the end); its result or exception
    lands in the returned dict."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, box


@pytest.fixture
def no_enqueue(monkeypatch):
    """Committed outbox rows are not delivered in-process: the test delivers them, in the order it needs."""
    queued: list[list[int]] = []
    monkeypatch.setattr(outbox, "enqueue", lambda ids: queued.append(list(ids)))
    return queued


def book(meeting_type, *, start=START, email="pat@example.org"):
    result = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email=email, timezone="UTC", now=NOW
    )
    return Booking.objects.get(pk=result.body["id"]), result.body["manage_token"]


def rows_of(booking: Booking, event: str, handler: str | None = None):
    rows = OutboxMessage.objects.filter(booking=booking, event=event).order_by("pk")
    return list(rows.filter(handler=handler) if handler else rows)


def live_google_events(fake_google, rep) -> list[dict]:
    cal = Calendar.objects.get(connection__rep=rep, is_primary=True)
    return [e for e in fake_google.calendar(cal.external_id).events.values() if e["status"] != "cancelled"]


def hold_provider_call(monkeypatch, method: str, thread_name: str):
    """Make ``provider.<method>`` called from the thread ``thread_name`` stop before it reaches the
    provider until ``go`` is set (``reached`` says it got there)."""
    reached, go = threading.Event(), threading.Event()
    real = writeback.provider_for

    def provider_for(conn, **kwargs):
        provider = real(conn, **kwargs)
        if threading.current_thread().name == thread_name:
            original = getattr(provider, method)

            def held(*args, **kw):
                reached.set()
                assert go.wait(WAIT)
                return original(*args, **kw)

            setattr(provider, method, held)
        return provider

    monkeypatch.setattr(writeback, "provider_for", provider_for)
    return reached, go


# --- 1. calendar write-back: writes of one booking out of order ---------------------------------------------


def test_a_cancellation_racing_the_confirmed_calendar_write_leaves_no_orphan_event(
    no_enqueue,
    google_connection,
    fake_google,
    monkeypatch,
):
    """The ``booking.confirmed`` and ``booking.cancelled`` calendar messages of one booking are separate
    outbox rows, delivered by different workers, and ``booking_events_sync`` takes no lock on the booking.
    Interleaving: the confirmed write reads the booking (confirmed) and is on its way to Google; the prospect
    cancels; the cancelled write runs, finds no ACTIVE BookingEvent and does nothing ("nothing"); the
    confirmed write then creates the event and stores it ACTIVE. Both rows are "delivered": the host keeps a
    meeting (with a Meet link and an invitation sent to the prospect) for a cancelled booking, for good.
    docs/calendars.md: "an event while the booking is confirmed and the host active, no event otherwise"."""
    rep = make_booking_rep()
    meeting_type = make_meeting_type(make_pool("first_available", [rep]))
    booking, token = book(meeting_type)
    google_connection(rep)  # connected after booking (no live check at NOW needed)
    (confirmed,) = rows_of(booking, "booking.confirmed", CALENDAR_HANDLER)
    reached, go = hold_provider_call(monkeypatch, "create_event", "confirmed-write")

    worker, box = in_thread("confirmed-write", lambda: outbox.deliver(message_id=confirmed.pk))
    try:
        assert reached.wait(WAIT), box
        booking_cancel(token=token, now=NOW)
        (cancelled,) = rows_of(booking, "booking.cancelled", CALENDAR_HANDLER)
        assert outbox.deliver(message_id=cancelled.pk) == "delivered"
    finally:
        go.set()
        worker.join(WAIT)
    assert box.get("result") == "delivered", box

    assert Booking.objects.get(pk=booking.pk).status == "cancelled"
    event = BookingEvent.objects.get(booking=booking)
    assert (event.state, live_google_events(fake_google, rep)) == (BookingEvent.State.CANCELLED, []), (
        f"orphan event in the host's calendar for a cancelled booking: {event.state}, "
        f"{[e['id'] for e in live_google_events(fake_google, rep)]}"
    )


def test_two_reschedules_written_out_of_order_leave_the_calendar_at_the_older_time(
    no_enqueue,
    google_connection,
    fake_google,
    monkeypatch,
):
    """Two quick reschedules (seq 1 → 11:00, seq 2 → 13:00) give two ``booking.rescheduled`` calendar rows.
    The first one's write reads the booking at 11:00 and stalls on its way to Google; the second one's write
    reads 13:00, updates the event and records ``written_sequence`` 2; the first then updates the event back
    to 11:00 and records ``written_sequence`` 1 from its stale read. The host's calendar shows 11:00 while
    the booking (and the prospect's e-mails) say 13:00; no retry is pending, so it stays wrong.
    docs/calendars.md (``booking_events_sync`` "makes the host's calendar match the booking")."""
    rep = make_booking_rep()
    meeting_type = make_meeting_type(make_pool("first_available", [rep]))
    booking, token = book(meeting_type)
    google_connection(rep)
    # it receives the bookings but does not block availability (no live check, never withheld at NOW)
    Calendar.objects.filter(connection__rep=rep).update(blocks_availability=False)
    (confirmed,) = rows_of(booking, "booking.confirmed", CALENDAR_HANDLER)
    assert outbox.deliver(message_id=confirmed.pk) == "delivered"
    first, second = START + dt.timedelta(hours=2), START + dt.timedelta(hours=4)
    booking_reschedule(token=token, start=first, now=NOW)
    (move1,) = rows_of(booking, "booking.rescheduled", CALENDAR_HANDLER)

    reached, go = hold_provider_call(monkeypatch, "update_event", "first-move")
    worker, box = in_thread("first-move", lambda: outbox.deliver(message_id=move1.pk))
    try:
        assert reached.wait(WAIT), box
        booking_reschedule(token=token, start=second, now=NOW)
        move2 = rows_of(booking, "booking.rescheduled", CALENDAR_HANDLER)[-1]
        assert outbox.deliver(message_id=move2.pk) == "delivered"
    finally:
        go.set()
        worker.join(WAIT)
    assert box.get("result") == "delivered", box

    (event,) = live_google_events(fake_google, rep)
    assert event["start"]["dateTime"] == second.isoformat().replace("+00:00", "Z"), (
        f"host's calendar at {event['start']['dateTime']}, booking at {second.isoformat()}"
    )


# --- 2. outbox: a batch claimed under one lease -------------------------------------------------------------


def test_a_row_of_a_batch_is_not_delivered_twice_when_its_lease_ran_out_before_its_turn(
    no_enqueue, monkeypatch
):
    """``deliver_many`` (the Celery task's path; the publisher batches up to 100 rows of several bookings in
    one task) claims every row with ONE lease computed at claim time, then runs the handlers one after the
    other, and ``_run`` never checks that the lease is still its own before calling a handler. When the rows
    ahead take longer than ``BOOKING_OUTBOX_LEASE_SECONDS``, a row whose handler has not even started is
    claimed and delivered by the sweep, and then delivered again by the task: the prospect gets the
    confirmation e-mail twice. booking/outbox.py docstring: "two workers never deliver the same row" /
    "exactly once" barring a crash; here nothing crashed."""
    rep = make_booking_rep()
    meeting_type = make_meeting_type(make_pool("first_available", [rep]))
    booking, _ = book(meeting_type)
    rows = rows_of(booking, "booking.confirmed")
    host = next(r for r in rows if r.handler == "email.host")
    prospect = next(r for r in rows if r.handler == "email.prospect")
    OutboxMessage.objects.filter(pk__in=[r.pk for r in rows if r not in (host, prospect)]).delete()
    # the host's e-mail is first in the batch (as the claim orders them) and is slow (SMTP, say)
    t0 = NOW + dt.timedelta(minutes=2)
    OutboxMessage.objects.filter(pk=host.pk).update(next_attempt_at=t0 - dt.timedelta(seconds=1))
    OutboxMessage.objects.filter(pk=prospect.pk).update(next_attempt_at=t0)
    reached, go = threading.Event(), threading.Event()
    real = outbox.HANDLERS["email.host"]

    def slow_host_email(payload):
        if threading.current_thread().name == "task":
            reached.set()
            assert go.wait(WAIT)
        return real(payload)

    monkeypatch.setitem(outbox.HANDLERS, "email.host", slow_host_email)
    mail.outbox.clear()
    worker, box = in_thread("task", lambda: outbox.deliver_many(message_ids=[host.pk, prospect.pk], now=t0))
    lease = dt.timedelta(seconds=settings.BOOKING_OUTBOX_LEASE_SECONDS + 1)
    try:
        assert reached.wait(WAIT), box
        # the host e-mail runs past the lease (the clock jumps for every thread): the periodic sweep runs
        # (the host's row is left out of it here, to show the row the task had not started yet)
        with time_machine.travel(dt.datetime.now(dt.UTC) + lease, tick=True):
            later = t0 + lease
            OutboxMessage.objects.filter(pk=host.pk).update(next_attempt_at=later + dt.timedelta(hours=1))
            assert outbox.sweep(now=later) == {"delivered": 1}  # the prospect's row
            go.set()
            worker.join(WAIT)
    finally:
        go.set()
        worker.join(WAIT)
    assert "result" in box, box
    # the task's claim of the row it then left to the sweep is no attempt: one in all, the sweep's
    assert OutboxMessage.objects.get(pk=prospect.pk).attempts == 1
    to_prospect = [m for m in mail.outbox if m.to == ["pat@example.org"]]
    assert len(to_prospect) == 1, f"prospect e-mailed {len(to_prospect)} times (task outcome {box['result']})"


# --- 3. calendar sync: a disconnect while a sync runs -------------------------------------------------------


def test_a_disconnect_during_a_running_sync_leaves_no_busy_time_behind(
    google_connection,
    fake_google,
    monkeypatch,
):
    """``calendar_sync`` checks the connection once, before it asks the provider, and ``busy_apply`` then
    writes the listing whatever happened meanwhile. Interleaving: a sync (poll or push) is listing the
    calendar; the rep clicks Disconnect (``connection_delete``): the calendar and its busy rows go (the
    ``pre_delete`` signal); the sync then inserts its rows under the deleted calendar's prefix. No sync or
    signal will ever remove them (the calendar is gone; a reconnect gets a new prefix): the rep's slots stay
    blocked by a calendar they disconnected, up to ``CALENDAR_SYNC_HORIZON_DAYS``. docs/calendars.md:
    "Disconnect stops push channels and removes the connection, its calendars and their busy times"."""
    from calendars.models import BusyInterval
    from calendars.services import sync
    from calendars.services.connections import connection_delete

    rep = make_booking_rep()
    conn = google_connection(rep)
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    soon = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    fake_google.put_event(cal.external_id, start=soon, end=soon + dt.timedelta(hours=8))
    reached, go = threading.Event(), threading.Event()
    real = sync.provider_for

    def provider_for(connection, **kwargs):
        provider = real(connection, **kwargs)
        original = provider.sync

        def held(*args, **kw):
            reached.set()
            assert go.wait(WAIT)
            return original(*args, **kw)

        provider.sync = held
        return provider

    monkeypatch.setattr(sync, "provider_for", provider_for)
    worker, box = in_thread("sync", lambda: sync.calendar_sync(calendar_id=cal.pk))
    try:
        assert reached.wait(WAIT), box
        connection_delete(connection=conn)  # the rep's Disconnect
    finally:
        go.set()
        worker.join(WAIT)
    assert "result" in box, box
    assert not Calendar.objects.filter(pk=cal.pk).exists()
    left = list(BusyInterval.objects.filter(rep=rep).values_list("external_id", "start", "end"))
    assert left == [], f"sync {box['result']!r}; busy rows of the disconnected calendar left behind: {left}"
