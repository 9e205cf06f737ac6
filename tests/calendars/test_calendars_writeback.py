"""Writing bookings into hosts' calendars: create with a video link and one invitation, retries that never
duplicate, reschedules, cancellations, reassignments and group bookings."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from booking.models import Booking, BookingHost
from calendars.errors import CalendarWriteFailed
from calendars.models import BookingEvent, Calendar, CalendarConnection
from calendars.selectors import booking_join_url
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import google_events, ms_events, reschedule

pytestmark = pytest.mark.django_db
State = BookingEvent.State
INSERT = r"/calendar/v3/calendars/[^/]+/events"
MS_CREATE = r"/v1.0/me/calendars/[^/]+/events"


def test_a_confirmed_booking_lands_in_the_hosts_google_calendar_with_meet(
    make_rep, google_connection, fake_google, make_booking
):
    rep = make_rep(timezone="Europe/Berlin")
    conn = google_connection(rep)
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    (event,) = google_events(fake_google, conn)
    assert event["summary"] == "Intro call: Pat Prospect"
    assert event["attendees"] == [{"email": "pat@prospect.example", "displayName": "Pat Prospect"}]
    assert event["start"] == {
        "dateTime": booking.start.isoformat().replace("+00:00", "Z"),
        "timeZone": "Europe/Berlin",
    }
    assert event["hangoutLink"].startswith("https://meet.google.com/")
    assert "size: 11-50" in event["description"]
    assert fake_google.invitations == [
        {"action": "created", "event_id": event["id"], "to": ["pat@prospect.example"]}
    ]
    insert = fake_google.requests_to("POST", r"/calendar/v3/calendars/[^/]+/events")[0]
    assert insert.query["conferenceDataVersion"] == "1" and insert.query["sendUpdates"] == "all"
    assert booking_join_url(booking.pk) == event["hangoutLink"]


def test_retries_are_no_ops_and_a_lost_write_is_not_duplicated(
    make_rep, google_connection, fake_google, make_booking
):
    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "unchanged"}
    # the provider created the event but Baton crashed before storing its id: the retry must not duplicate
    BookingEvent.objects.filter(booking=booking).update(
        state=State.CANCELLED, external_event_id="", written_sequence=-1
    )
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert len(google_events(fake_google, conn)) == 1
    assert len(fake_google.invitations) == 1  # Google answered 409 and the existing event was taken as done


def test_a_booking_of_a_reused_key_never_takes_over_another_bookings_event(
    make_rep, google_connection, fake_google, make_booking
):
    """After a database reset (or with another installation writing into the same calendar) a booking may
    have the key of one whose event is in the calendar: its write must make its own event, not take that
    one for a retry of its own and move it."""
    rep = make_rep()
    conn = google_connection(rep)
    first = make_booking(rep)
    booking_events_sync(booking_id=first.pk)
    (kept,) = google_events(fake_google, conn)
    pk, created = first.pk, first.created_at
    Booking.objects.filter(pk=pk).delete()  # the database is reset; the calendar keeps its event
    later = make_booking(
        rep, id=pk, start=first.start + dt.timedelta(hours=2), created_at=created + dt.timedelta(seconds=1)
    )
    assert booking_events_sync(booking_id=later.pk) == {rep.pk: "created"}
    events = {e["id"]: e for e in google_events(fake_google, conn)}
    assert len(events) == 2 and events[kept["id"]]["start"] == kept["start"]
    assert len(fake_google.invitations) == 2


def test_reschedule_updates_and_cancel_removes(make_rep, google_connection, fake_google, make_booking):
    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    reschedule(booking, 2)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "updated"}
    (event,) = google_events(fake_google, conn)
    assert event["start"]["dateTime"] == booking.start.isoformat().replace("+00:00", "Z")
    assert event["hangoutLink"]  # the Meet link stays
    booking.status = Booking.Status.CANCELLED
    booking.sequence += 1
    booking.save()
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "cancelled"}
    assert google_events(fake_google, conn) == []
    assert [i["action"] for i in fake_google.invitations] == ["created", "updated", "cancelled"]
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "nothing"}


def test_microsoft_booking_gets_teams_and_a_transaction_id(make_rep, ms_connection, fake_ms, make_booking):
    rep = make_rep()
    conn = ms_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    (event,) = [e for e in fake_ms.calendar(cal.external_id)[1].events.values() if not e.get("_deleted")]
    assert event["isOnlineMeeting"] is True and event["onlineMeetingProvider"] == "teamsForBusiness"
    assert event["transactionId"].startswith("baton-")
    assert booking_join_url(booking.pk).startswith("https://teams.microsoft.com/")
    BookingEvent.objects.filter(booking=booking).update(state=State.CANCELLED, written_sequence=-1)
    booking_events_sync(booking_id=booking.pk)  # the retried POST carries the same transactionId
    assert (
        len([e for e in fake_ms.calendar(cal.external_id)[1].events.values() if not e.get("_deleted")]) == 1
    )


def test_no_teams_where_the_calendar_does_not_allow_it(make_rep, ms_connection, fake_ms, make_booking):
    rep = make_rep()
    ms_connection(rep, teams=False)
    booking_events_sync(booking_id=make_booking(rep).pk)
    body = fake_ms.requests_to("POST", r"/v1.0/me/calendars/[^/]+/events")[0].json()
    assert "isOnlineMeeting" not in body


def test_a_fixed_meeting_location_is_used_instead_of_a_new_video_link(
    make_rep, google_connection, fake_google, make_booking
):
    make_booking.meeting.location_detail = "https://zoom.example/j/123"
    make_booking.meeting.save()
    rep = make_rep()
    conn = google_connection(rep)
    booking_events_sync(booking_id=make_booking(rep).pk)
    (event,) = google_events(fake_google, conn)
    assert event["location"] == "https://zoom.example/j/123" and "hangoutLink" not in event


def test_group_booking_lead_invites_and_co_host_shows_the_link(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    lead, co_host = make_rep("Ann"), make_rep("Sol")
    lead_conn = google_connection(lead)
    ms_connection(co_host)
    booking = make_booking(lead, co_host)
    assert booking_events_sync(booking_id=booking.pk) == {lead.pk: "created", co_host.pk: "created"}
    (lead_event,) = google_events(fake_google, lead_conn)
    co_event = fake_ms.requests_to("POST", r"/v1.0/me/calendars/[^/]+/events")[0].json()
    assert co_event["attendees"] == [] and "isOnlineMeeting" not in co_event
    assert co_event["location"]["displayName"] == lead_event["hangoutLink"]
    assert len(fake_google.invitations) == 1 and fake_ms.invitations == []


def test_reassignment_moves_the_event(make_rep, google_connection, fake_google, make_booking):
    old, new = make_rep(), make_rep()
    old_conn, new_conn = google_connection(old), google_connection(new)
    booking = make_booking(old)
    booking_events_sync(booking_id=booking.pk)
    BookingHost.objects.filter(booking=booking, rep=old).update(active=False)
    BookingHost.objects.create(booking=booking, rep=new, blocked_start=booking.start, blocked_end=booking.end)
    booking.sequence += 1
    booking.save()
    assert booking_events_sync(booking_id=booking.pk) == {new.pk: "created", old.pk: "cancelled"}
    assert google_events(fake_google, old_conn) == [] and len(google_events(fake_google, new_conn)) == 1


def test_hosts_without_a_writable_calendar_are_skipped(make_rep, ics_connection, make_booking):
    from calendars_harness import fixture_bytes

    plain, ics_rep = make_rep(), make_rep()
    ics_connection(ics_rep, fixture_bytes("google_export_xwr.ics"))
    booking = make_booking(plain)
    assert booking_events_sync(booking_id=booking.pk) == {plain.pk: "no_calendar"}
    assert booking_events_sync(booking_id=make_booking(ics_rep).pk) == {ics_rep.pk: "no_calendar"}


def test_a_failing_host_raises_for_a_retry_and_the_others_are_done(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    lead, co_host = make_rep(), make_rep()
    google_connection(lead)
    ms_connection(co_host)
    fake_ms.add_fault(
        "POST", r"/v1.0/me/calendars/[^/]+/events", status=503, times=-1, headers={"Retry-After": "120"}
    )
    booking = make_booking(lead, co_host)
    with pytest.raises(CalendarWriteFailed) as failure:
        booking_events_sync(booking_id=booking.pk)
    assert failure.value.details["outcome"] == {
        lead.pk: "created",
        co_host.pk: "failed: provider_unavailable",
    }
    fake_ms.clear_faults()
    assert booking_events_sync(booking_id=booking.pk) == {lead.pk: "unchanged", co_host.pk: "created"}
    assert len(fake_google.invitations) == 1


def test_a_revoked_grant_during_a_write_disconnects(make_rep, google_connection, fake_google, make_booking):
    rep = make_rep()
    conn = google_connection(rep)
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    with pytest.raises(CalendarWriteFailed):
        booking_events_sync(booking_id=make_booking(rep).pk)
    assert CalendarConnection.objects.get(pk=conn.pk).status == CalendarConnection.Status.DISCONNECTED


def test_outbox_handler_takes_a_booking_id_and_registers_every_kind(
    make_rep, google_connection, make_booking
):
    from calendars import outbox
    from calendars.errors import CalendarError

    rep = make_rep()
    google_connection(rep)
    booking = make_booking(rep)
    assert outbox.write_booking_to_calendars({"booking_id": str(booking.pk)}) == {rep.pk: "created"}
    assert outbox.write_booking_to_calendars({"booking_id": booking.pk}) == {rep.pk: "unchanged"}
    with pytest.raises(CalendarError):
        outbox.write_booking_to_calendars({})
    registered = []
    outbox.register(lambda kind, handler: registered.append((kind, handler)))
    assert [k for k, _ in registered] == list(outbox.KINDS)


def test_delivered_through_the_booking_outbox(
    settings, make_rep, google_connection, fake_google, make_booking, django_capture_on_commit_callbacks
):
    booking_outbox = pytest.importorskip("booking.outbox")
    from calendars import outbox

    settings.BOOKING_OUTBOX_GRACE_SECONDS = 0
    settings.BOOKING_OUTBOX_LEASE_SECONDS = 60
    settings.BOOKING_OUTBOX_MAX_ATTEMPTS = 5
    outbox.register(booking_outbox.register_handler)  # what BookingConfig.ready does at start-up
    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    with django_capture_on_commit_callbacks(execute=False):
        rows = booking_outbox.emit("booking.confirmed", booking)
    (row,) = [r for r in rows if r.handler == "calendars.outbox.write_booking_to_calendars"]
    fake_google.add_fault("POST", r"/calendar/v3/calendars/[^/]+/events", status=503, times=4)
    assert booking_outbox.deliver(message_id=row.pk) == "retry"  # Google down: the outbox keeps the row
    assert google_events(fake_google, conn) == []
    row.refresh_from_db()
    assert booking_outbox.deliver(message_id=row.pk, now=row.next_attempt_at) == "delivered"
    assert len(google_events(fake_google, conn)) == 1


# -- creates across timeouts and throttling, reschedules and cancellations ---------------------------------


def sync_until_done(booking_id: int, attempts: int = 3):
    """What the outbox does: call the handler again until it stops raising."""
    for _ in range(attempts):
        try:
            return booking_events_sync(booking_id=booking_id)
        except CalendarWriteFailed:
            time.sleep(1.5)  # let a request the client gave up on finish at the fake
    return booking_events_sync(booking_id=booking_id)


def test_a_google_insert_timing_out_after_it_succeeded_leaves_one_event(
    settings, make_rep, google_connection, fake_google, make_booking
):
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 1
    rep = make_rep()
    conn = google_connection(rep)
    fake_google.add_fault("POST", INSERT, delay=2, passthrough=True, times=1)
    booking = make_booking(rep)
    sync_until_done(booking.pk)
    time.sleep(1.5)
    assert len(google_events(fake_google, conn)) == 1
    assert len(fake_google.invitations) == 1
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "unchanged"}
    assert booking_join_url(booking.pk)


def test_a_graph_create_timing_out_after_it_succeeded_leaves_one_event(
    settings, make_rep, ms_connection, fake_ms, make_booking
):
    rep = make_rep()
    conn = ms_connection(rep)
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 1
    fake_ms.add_fault("POST", MS_CREATE, delay=2, passthrough=True, times=1)
    booking = make_booking(rep)
    sync_until_done(booking.pk)
    time.sleep(1.5)
    assert len(ms_events(fake_ms, conn)) == 1
    assert len(fake_ms.invitations) == 1
    assert booking_join_url(booking.pk).startswith("https://teams.microsoft.com/")


def test_a_google_403_rate_limit_on_insert_is_retried_without_duplicates(
    make_rep, google_connection, fake_google, make_booking
):
    rep = make_rep()
    conn = google_connection(rep)
    fake_google.add_fault(
        "POST",
        INSERT,
        status=403,
        times=2,
        body=b'{"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": '
        b'[{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}]}}',
    )
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert len(google_events(fake_google, conn)) == 1 and len(fake_google.invitations) == 1


def test_a_graph_429_on_create_waits_and_does_not_duplicate(make_rep, ms_connection, fake_ms, make_booking):
    rep = make_rep()
    conn = ms_connection(rep)
    fake_ms.add_fault(
        "POST",
        MS_CREATE,
        status=429,
        times=1,
        headers={"Retry-After": "0.2"},
        body=b'{"error": {"code": "TooManyRequests", "message": "Please retry again later."}}',
    )
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert len(ms_events(fake_ms, conn)) == 1


def test_a_graph_reschedule_keeps_teams_and_a_cancel_notifies_once(
    make_rep, ms_connection, fake_ms, make_booking
):
    rep = make_rep()
    conn = ms_connection(rep)
    booking = make_booking(rep)
    booking_events_sync(booking_id=booking.pk)
    link = booking_join_url(booking.pk)
    reschedule(booking, 2)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "updated"}
    (event,) = ms_events(fake_ms, conn)
    assert event["start"]["dateTime"].startswith(booking.start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert booking_join_url(booking.pk) == link and event["onlineMeeting"]["joinUrl"] == link
    booking.status = Booking.Status.CANCELLED
    booking.sequence += 1
    booking.save()
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "cancelled"}
    assert ms_events(fake_ms, conn) == []
    assert [i["action"] for i in fake_ms.invitations] == ["created", "updated", "cancelled"]


def test_a_group_cancel_tells_the_prospect_once_and_removes_every_event(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    lead, co_host = make_rep("Ann"), make_rep("Sol")
    lead_conn, co_conn = google_connection(lead), ms_connection(co_host)
    booking = make_booking(lead, co_host)
    booking_events_sync(booking_id=booking.pk)
    booking.status = Booking.Status.CANCELLED
    booking.sequence += 1
    booking.save()
    assert booking_events_sync(booking_id=booking.pk) == {lead.pk: "cancelled", co_host.pk: "cancelled"}
    assert google_events(fake_google, lead_conn) == [] and ms_events(fake_ms, co_conn) == []
    to_pat = [i["action"] for i in fake_google.invitations + fake_ms.invitations]
    assert to_pat == ["created", "cancelled"]
