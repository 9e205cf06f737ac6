"""A host who deletes the meeting Baton wrote into their calendar: the next incremental sync marks the
event (``BookingEvent.host_removed_at``), and the booking shows in the booking list's "needs attention"
(reason ``removed``), so an admin can reassign it before the prospect finds nobody there. Baton's own
cancellation of its event is not the host's, and writing the event again clears the mark."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.models import Booking
from booking.selectors import bookings_needing_attention
from booking.services import booking_create
from calendars.models import BookingEvent, Calendar
from calendars.services.removed import events_missing_from_full_sync
from calendars.services.sync import calendar_sync
from calendars.services.writeback import booking_events_sync
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_working_rep
from tests.calendars.test_calendars_live_booking import next_weekday_at_ten

pytestmark = pytest.mark.django_db


def booked(connect) -> tuple[Booking, Calendar]:
    rep = make_working_rep("Ana")
    cal = Calendar.objects.get(connection=connect(rep), is_primary=True)
    assert cal.receives_bookings and cal.blocks_availability
    calendar_sync(calendar_id=cal.pk)  # a sync state, so that the next sync is incremental
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    body = booking_create(
        meeting_type=meeting_type,
        start=next_weekday_at_ten(),
        name="Pat",
        email="p@example.org",
        timezone="UTC",
    ).body
    booking = Booking.objects.get(pk=body["id"])
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert calendar_sync(calendar_id=cal.pk) == "incremental"  # Baton's own new event: nothing to mark
    return booking, cal


def attention(reason: str = "removed") -> list[int]:
    now = dt.datetime.now(dt.UTC)
    return list(
        bookings_needing_attention(Booking.objects.all(), reason, now=now).values_list("pk", flat=True)
    )


def test_a_google_host_deleting_the_event_puts_the_booking_on_the_list(
    google_connection, fake_google, mailoutbox, settings
):
    settings.CALENDAR_ALERT_EMAILS = ["ops@example.com"]
    booking, cal = booked(google_connection)
    event = BookingEvent.objects.get(booking=booking)
    assert event.host_removed_at is None and attention() == []
    fake_google.cancel_event(cal.external_id, event.external_event_id)  # the host deletes it
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    event.refresh_from_db()
    assert event.host_removed_at is not None
    assert attention() == attention("") == [booking.pk]
    (alert,) = mailoutbox  # once, to the calendar alert list (or ADMINS), with a link to the booking
    assert alert.to == ["ops@example.com"] and "Ana removed 1 upcoming meeting(s)" in alert.subject
    assert f"/admin/booking/booking/{booking.pk}/change/" in alert.body and "still stand" in alert.body
    assert calendar_sync(calendar_id=cal.pk) == "incremental" and len(mailoutbox) == 1  # told once
    booking.sequence += 1  # Baton writes the event again (a reschedule, say): back in the calendar
    booking.save()
    assert booking_events_sync(booking_id=booking.pk)[booking.hosts.get().rep_id] in {"updated", "created"}
    event.refresh_from_db()
    assert event.host_removed_at is None and attention() == []


def test_a_microsoft_host_deleting_the_event_puts_the_booking_on_the_list(ms_connection, fake_ms):
    booking, cal = booked(ms_connection)
    event = BookingEvent.objects.get(booking=booking)
    fake_ms.delete_event(cal.external_id, event.external_event_id)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert attention() == [booking.pk]


def test_batons_own_cancellation_is_not_the_hosts(google_connection, fake_google, mailoutbox):
    booking, cal = booked(google_connection)
    host = booking.hosts.get()
    host.active = False  # reassigned away: Baton cancels its event
    host.save()
    assert booking_events_sync(booking_id=booking.pk) == {host.rep_id: "cancelled"}
    calendar_sync(calendar_id=cal.pk)
    assert BookingEvent.objects.get(booking=booking).host_removed_at is None
    assert mailoutbox == []


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_a_full_sync_marks_batons_event_it_no_longer_lists(provider, request, mailoutbox):
    """A full sync (a lost sync token, the window rolled forward, a forced one) lists only the events that
    are there, never a deletion: Baton's event missing from it was deleted by the host. Before, only an
    incremental sync's deletions marked it, so a deletion followed by an expired token was never seen."""
    connect = request.getfixturevalue(f"{'google' if provider == 'google' else 'ms'}_connection")
    fake = request.getfixturevalue(f"fake_{'google' if provider == 'google' else 'ms'}")
    booking, cal = booked(connect)
    assert calendar_sync(calendar_id=cal.pk, force_full=True) == "full"  # the event is there: no mark
    assert attention() == [] and mailoutbox == []
    event = BookingEvent.objects.get(booking=booking)
    if provider == "google":
        fake.cancel_event(cal.external_id, event.external_event_id)
    else:
        fake.delete_event(cal.external_id, event.external_event_id)
    assert calendar_sync(calendar_id=cal.pk, force_full=True) == "full"
    assert attention() == [booking.pk]
    assert len(mailoutbox) == 1 and "Ana removed 1 upcoming meeting(s)" in mailoutbox[0].subject
    assert calendar_sync(calendar_id=cal.pk, force_full=True) == "full" and len(mailoutbox) == 1  # once


def test_a_full_sync_leaves_events_written_after_it_listed(google_connection, fake_google):
    """The write-back may put the event in the calendar after the sync's listing and record it before the
    sync compares: such an event is left for the next sync, not taken for deleted."""
    booking, cal = booked(google_connection)
    event = BookingEvent.objects.get(booking=booking)
    listed_at = event.updated_at - dt.timedelta(seconds=1)  # the listing began before the event was recorded
    window = (booking.start - dt.timedelta(days=1), booking.end + dt.timedelta(days=1))
    kwargs = {"calendar": cal, "listed": set(), "window": window, "now": listed_at}
    assert events_missing_from_full_sync(**kwargs, listed_at=listed_at) == 0
    assert events_missing_from_full_sync(**kwargs, listed_at=event.updated_at + dt.timedelta(seconds=1)) == 1


def test_a_microsoft_event_the_host_deleted_is_written_anew(ms_connection, fake_ms):
    """Graph keeps no deleted event under its id: the update answers 404 (ErrorItemNotFound). Baton writes
    the event anew (a new transactionId); before, the write failed on every outbox retry and the host never
    got the meeting back."""
    booking, cal = booked(ms_connection)
    event = BookingEvent.objects.get(booking=booking)
    fake_ms.delete_event(cal.external_id, event.external_event_id)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    Booking.objects.filter(pk=booking.pk).update(sequence=booking.sequence + 1)  # a reschedule, say
    assert booking_events_sync(booking_id=booking.pk) == {booking.hosts.get().rep_id: "created"}
    event.refresh_from_db()
    assert event.host_removed_at is None and event.generation == 1
    live = [e for e in fake_ms.calendar(cal.external_id)[1].events.values() if not e.get("_deleted")]
    assert [e["id"] for e in live] == [event.external_event_id]
    assert booking_events_sync(booking_id=booking.pk) == {booking.hosts.get().rep_id: "unchanged"}


def test_a_google_event_purged_after_deletion_is_written_anew(google_connection, fake_google):
    """Google keeps a deleted event as cancelled for a while (the update restores it, id and conference
    kept: the first test); once purged, the update answers 404 and Baton writes the event anew."""
    booking, cal = booked(google_connection)
    event = BookingEvent.objects.get(booking=booking)
    del fake_google.calendar(cal.external_id).events[event.external_event_id]  # purged
    Booking.objects.filter(pk=booking.pk).update(sequence=booking.sequence + 1)
    assert booking_events_sync(booking_id=booking.pk) == {booking.hosts.get().rep_id: "created"}
    event.refresh_from_db()
    assert event.external_event_id in fake_google.calendar(cal.external_id).events
