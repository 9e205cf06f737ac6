"""Calendars changing under bookings: a receiving calendar switched from Google to an Outlook calendar
without Teams does not keep the cancelled event's Meet link, and the admin cannot change a calendar's roles
around the rep's page (which clears a calendar's busy rows when it stops blocking and keeps one receiving
calendar), and an account removed and connected again takes back the events written into it. Each test
failed before its fix."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.models import Booking, BookingHost
from calendars.models import BookingEvent
from calendars.selectors import booking_join_url
from calendars.services.connections import calendar_roles_set
from calendars.services.sync import calendar_sync
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import google_events, primary, reschedule

pytestmark = pytest.mark.django_db
State = BookingEvent.State


def test_switching_the_receiving_calendar_does_not_keep_the_cancelled_meet_link(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    """A rep moves bookings from Google to a Microsoft calendar without Teams. On the next write
    ``_host_sync`` cancels the Google event (and its Meet conference) and creates the Outlook event without
    a link, but keeps ``event.join_url = written.join_url or event.join_url``: ``booking_join_url`` keeps
    handing out the Meet link of the cancelled Google event (booking pages, co-hosts' events)."""
    rep = make_rep()
    g_conn = google_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    meet = booking_join_url(booking.pk)
    assert meet.startswith("https://meet.google.com/")

    ms_conn = ms_connection(rep, teams=False)
    outlook = primary(ms_conn)
    calendar_roles_set(rep=rep, blocking_ids={primary(g_conn).pk, outlook.pk}, receiving_id=outlook.pk)
    reschedule(booking, 1)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert google_events(fake_google, g_conn) == []  # the Meet meeting is cancelled
    assert BookingEvent.objects.get(booking=booking).calendar_id == outlook.pk
    assert booking_join_url(booking.pk) != meet, "the join link is the cancelled Google event's Meet link"


def test_the_admin_cannot_change_a_calendars_roles_around_the_reps_page(
    admin_client, make_rep, google_connection
):
    """The admin saved ``blocks_availability`` / ``receives_bookings`` straight to the row: a calendar that
    stopped blocking kept its busy rows for good (syncs skip it), and a second calendar could receive
    bookings. They are the rep's to choose on their calendar page, read-only in the admin."""
    rep = make_rep()
    cal = primary(google_connection(rep))
    url = f"/admin/calendars/calendar/{cal.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="blocks_availability"' not in page and 'name="receives_bookings"' not in page
    answer = admin_client.post(url, {"name": cal.name})  # "blocks" and "receives" unticked, if they could be
    assert answer.status_code == 302
    cal.refresh_from_db()
    assert cal.blocks_availability and cal.receives_bookings


def test_a_booking_cancelled_while_the_grant_is_revoked_leaves_the_calendar_once_the_rep_reconnects(
    google_connection, fake_google
):
    """While the grant was revoked the cancellation could not reach Google, and Baton forgot the event
    anyway (its id cleared): after the rep reconnected, the meeting stayed in their calendar for good. The
    event is kept "pending" now and removed when the rep reconnects (``connection_events_resync``)."""
    from calendars.tasks import connection_setup_task
    from tests.calendars.test_calendars_removed_events import booked

    booking, cal = booked(google_connection)
    rep = booking.hosts.get().rep
    event = BookingEvent.objects.get(booking=booking)
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    cancelled = {"status": Booking.Status.CANCELLED, "sequence": booking.sequence + 1}
    Booking.objects.filter(pk=booking.pk).update(**cancelled)
    BookingHost.objects.filter(booking=booking).update(active=False, released=BookingHost.Released.CANCELLED)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "pending"}
    event.refresh_from_db()
    written = event.external_event_id
    assert event.state == State.ACTIVE and written  # still known
    assert fake_google.calendar(cal.external_id).events[written]["status"] == "confirmed"
    connection_setup_task(google_connection(rep).pk)  # the rep reconnects the same account
    event.refresh_from_db()
    assert event.state == State.CANCELLED
    assert fake_google.calendar(cal.external_id).events[written]["status"] == "cancelled"


def test_a_rep_who_removes_and_reconnects_an_account_gets_a_moved_meeting_moved_not_doubled(
    make_rep, google_connection, fake_google, make_booking
):
    """A rep removes their Google account on their calendar page (the connection, its calendars and busy
    rows are deleted) and connects it again. Baton's event record had lost its calendar with the old row, so
    rescheduling the booking wrote a second event beside the old one: the rep's calendar showed the meeting
    at both times. The event keeps which account and calendar it was written to, and a reconnect of that
    calendar takes it back."""
    from calendars.services.connections import connection_delete

    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    connection_delete(connection=conn)
    assert BookingEvent.objects.get(booking=booking).calendar_id is None
    conn = google_connection(rep)  # the same account again
    reschedule(booking, 1)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "updated"}
    events = google_events(fake_google, conn)
    assert len(events) == 1, "the old event stays beside the new one"
    assert dt.datetime.fromisoformat(events[0]["start"]["dateTime"]) == booking.start


def test_a_booking_cancelled_while_the_account_was_removed_leaves_the_calendar_on_reconnect(
    make_rep, google_connection, fake_google, make_booking
):
    """Cancelled while the rep's account was removed from Baton, the booking's event was forgotten (nothing
    to cancel it with); after the rep connected the account again, the meeting stayed in their calendar for
    good. It is kept and cancelled once the calendar is back (``connection_setup_task``)."""
    from calendars.services.connections import connection_delete
    from calendars.tasks import connection_setup_task

    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    connection_delete(connection=conn)
    Booking.objects.filter(pk=booking.pk).update(
        status=Booking.Status.CANCELLED, sequence=booking.sequence + 1
    )
    BookingHost.objects.filter(booking=booking).update(active=False, released=BookingHost.Released.CANCELLED)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "pending"}
    conn = google_connection(rep)
    assert google_events(fake_google, conn) != []
    connection_setup_task(conn.pk)
    assert google_events(fake_google, conn) == []
    assert BookingEvent.objects.get(booking=booking).state == State.CANCELLED
