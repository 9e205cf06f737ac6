"""A Graph event whose create was never answered (a timeout) though Graph made it: found where the creates
were sent for after the booking moved, and brought to the booking's time by the retry."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest

from booking.models import Booking, BookingHost
from calendars.errors import CalendarWriteFailed
from calendars.models import BookingEvent
from calendars.models import Calendar as RepCalendar
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

GRAPH_CREATE = r"/v1.0/me/calendars/[^/]+/events"


# --------------------------------------------------------------------------------------------------------
# Microsoft Graph: a create whose answer never came (BookingEvent.State.CREATING, commit 96851bd)


@pytest.fixture
def graph(fake_ms):
    """The fake Microsoft (sign-in and Graph) of tests/calendars/conftest.py."""
    return fake_ms


def upcoming_booking(rep, start) -> Booking:
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    booking = Booking.objects.create(
        meeting_type=meeting_type,
        pool=meeting_type.pool,
        start=start,
        end=start + dt.timedelta(minutes=30),
        prospect_name="Pat Prospect",
        prospect_email="pat@prospect.example",
        prospect_timezone="Europe/Paris",
        manage_token_hash=secrets.token_hex(32),
        answers={},
    )
    BookingHost.objects.create(
        booking=booking, rep=rep, role="ae", blocked_start=booking.start, blocked_end=booking.end
    )
    return booking


def live_graph_events(server, conn) -> list[tuple[str, str]]:
    cal = RepCalendar.objects.get(connection=conn, receives_bookings=True)
    events = server.calendar(cal.external_id)[1].events.values()
    return [
        (e["subject"], e["start"]["dateTime"][:16])
        for e in events
        if not e.get("_deleted") and not e["isCancelled"]
    ]


def timed_out_create(graph, settings, booking) -> None:
    """Baton's create of the host's event times out (1 s) while Graph goes on and makes it (2 s)."""
    from calendars.services.writeback import booking_events_sync

    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 1
    graph.add_fault("POST", GRAPH_CREATE, delay=2, passthrough=True, times=1)
    with pytest.raises(CalendarWriteFailed):
        booking_events_sync(booking_id=booking.pk)
    time.sleep(2.5)  # Graph finished the create the client gave up on
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 5
    assert BookingEvent.objects.get(booking=booking).state == BookingEvent.State.CREATING


def test_graph_event_made_by_a_timed_out_create_goes_when_the_booking_is_moved_then_cancelled(
    graph, ms_connection, settings
):
    """Ana's event is created at 10:00; the answer never comes (Graph made it, Pat invited). Before the
    write-back's retry, Pat moves the meeting to 14:00 and then cancels it (both rows below, as
    ``booking_reschedule`` and ``booking_cancel`` leave them; their write-backs run after). The write-back
    finds the record ``creating`` and not wanted, and ``MicrosoftProvider.cancel_unconfirmed`` looks for the
    transactionId in calendarView at the booking's CURRENT time (14:00): the 10:00 event is not there, the
    record is marked cancelled, and the cancelled meeting stays in Ana's and Pat's calendars for good."""
    from calendars.services.writeback import booking_events_sync

    ana = make_rep("Ana")
    conn = ms_connection(ana)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    booking = upcoming_booking(ana, start)
    timed_out_create(graph, settings, booking)
    assert len(live_graph_events(graph, conn)) == 1

    moved = start + dt.timedelta(hours=4)
    Booking.objects.filter(pk=booking.pk).update(
        start=moved, end=moved + dt.timedelta(minutes=30), sequence=2, status=Booking.Status.CANCELLED
    )
    booking_events_sync(booking_id=booking.pk)
    assert BookingEvent.objects.get(booking=booking).state == BookingEvent.State.CANCELLED
    left = live_graph_events(graph, conn)
    assert left == [], f"the cancelled meeting stays in Ana's Outlook calendar (Pat invited): {left}"


def test_graph_retry_of_a_timed_out_create_after_a_move_brings_the_event_to_the_new_time(
    graph, ms_connection, settings
):
    """As above, but Pat only moves the meeting to 14:00. The write-back retries the create with the same
    transactionId (the record is ``creating``); Graph answers with the event it made at 10:00, and Baton
    records it as written for the new SEQUENCE: Ana's (and Pat's) calendar shows 10:00 for good. Google's
    ``create_event`` compares the found event's time and patches it; Graph's takes it as it is."""
    from calendars.services.writeback import booking_events_sync

    ana = make_rep("Ana")
    conn = ms_connection(ana)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    booking = upcoming_booking(ana, start)
    timed_out_create(graph, settings, booking)

    moved = start + dt.timedelta(hours=4)
    Booking.objects.filter(pk=booking.pk).update(
        start=moved, end=moved + dt.timedelta(minutes=30), sequence=1
    )
    booking_events_sync(booking_id=booking.pk)
    event = BookingEvent.objects.get(booking=booking)
    assert event.state == BookingEvent.State.ACTIVE and event.written_sequence == 1
    left = live_graph_events(graph, conn)
    assert [when for _, when in left] == [moved.strftime("%Y-%m-%dT%H:%M")], (
        f"Ana's calendar holds the meeting at its old time: {left}"
    )


def test_graph_event_of_two_timed_out_creates_is_found_at_the_first_time_once_cancelled(
    graph, ms_connection, settings
):
    """The create for 10:00 times out (Graph made it); the meeting moves to 14:00 and the retry times out too
    (Graph answered with the 10:00 event, the patch to 14:00 never sent). Cancelled then, the event is
    looked for at every time a create under its key was sent for, and the 10:00 one is removed."""
    from calendars.services.writeback import booking_events_sync

    ana = make_rep("Ana")
    conn = ms_connection(ana)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    booking = upcoming_booking(ana, start)
    timed_out_create(graph, settings, booking)
    moved = start + dt.timedelta(hours=4)
    Booking.objects.filter(pk=booking.pk).update(
        start=moved, end=moved + dt.timedelta(minutes=30), sequence=1
    )
    timed_out_create(graph, settings, booking)
    assert [when for _, when in live_graph_events(graph, conn)] == [start.strftime("%Y-%m-%dT%H:%M")]

    Booking.objects.filter(pk=booking.pk).update(sequence=2, status=Booking.Status.CANCELLED)
    booking_events_sync(booking_id=booking.pk)
    assert BookingEvent.objects.get(booking=booking).state == BookingEvent.State.CANCELLED
    assert live_graph_events(graph, conn) == []


def test_graph_create_answered_at_once_is_not_patched(graph, ms_connection):
    """A create that was answered needs no second write: the event Graph made is the one drafted."""
    from calendars.services.writeback import booking_events_sync

    ana = make_rep("Ana")
    conn = ms_connection(ana)
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    booking = upcoming_booking(ana, start)
    booking_events_sync(booking_id=booking.pk)
    event = BookingEvent.objects.get(booking=booking)
    assert event.state == BookingEvent.State.ACTIVE
    assert (event.sent_start, event.sent_end) == (booking.start, booking.end)
    assert len(live_graph_events(graph, conn)) == 1
    assert graph.requests_to("PATCH", r"/v1.0/me/events/[^/]+") == []
