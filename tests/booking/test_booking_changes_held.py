"""Booking changes (cancel, reschedule, reassign, deletion) and what the hosts and the prospect hold: events
waiting for a reconnect, a create the provider made though its answer never came, Baton's invitation held
by a host who connected a calendar since, and late retries of older e-mails."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from cryptography.fernet import Fernet

from booking.errors import BookingError
from booking.models import Booking, OutboxMessage
from booking.services import booking_cancel, booking_create
from booking.services.delete import bookings_delete
from calendars.models import BookingEvent, CalendarConnection
from calendars.models import Calendar as RepCalendar
from calendars.services.connections import calendars_refresh, connection_create, connection_mark_disconnected
from calendars.services.sync import calendar_sync
from calendars.services.writeback import connection_events_resync
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep
from tests.fakes.google import FakeGoogle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"


@pytest.fixture
def fake_google(settings, monkeypatch):
    """A fake Google Calendar server on loopback (as ``tests/calendars/conftest.py`` sets one up)."""
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.GOOGLE_CLIENT_ID = "baton-test.apps.googleusercontent.com"
    settings.GOOGLE_CLIENT_SECRET = "google-client-secret-for-tests"
    settings.CALENDAR_PUSH_ENABLED = False
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 5
    settings.CALENDAR_ALERT_EMAILS = ["ops@example.com"]
    server = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = server.api_endpoint
    settings.GOOGLE_TOKEN_URI = f"{server.base_url}/token"
    settings.GOOGLE_REVOKE_URI = f"{server.base_url}/revoke"
    settings.GOOGLE_AUTH_URI = f"{server.base_url}/o/oauth2/auth"
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setattr("googleapiclient.http.time", types.SimpleNamespace(sleep=lambda seconds: None))
    yield server
    server.stop()


def google_connect(server, rep) -> CalendarConnection:
    """The rep connects (or reconnects) their (fake) Google account, as the OAuth callback would."""
    if rep.email not in server.accounts:
        server.add_account(rep.email, time_zone=rep.timezone)
    tokens = server.issue_tokens(rep.email)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=tokens["expires_in"])).isoformat()
    conn = connection_create(
        rep=rep,
        provider=CalendarConnection.Provider.GOOGLE,
        secrets={"token": tokens["access_token"], "refresh_token": tokens["refresh_token"], "expiry": expiry},
        account_email=rep.email,
    )
    calendars_refresh(connection_id=conn.pk)
    calendar_sync(calendar_id=RepCalendar.objects.get(connection=conn, is_primary=True).pk)
    return conn


def live_events(server, conn) -> list[dict]:
    cal = RepCalendar.objects.get(connection=conn, is_primary=True)
    return [e for e in server.calendar(cal.external_id).events.values() if e["status"] != "cancelled"]


def test_deleting_a_cancelled_booking_whose_event_awaits_the_hosts_reconnect_is_refused(
    fake_google, django_capture_on_commit_callbacks
):
    """Ana's Google grant is revoked; Pat then cancels. The write-back keeps Ana's event "pending" until she
    reconnects (docs/calendars.md promises it is removed then), and every outbox row is delivered, so an
    admin may delete the cancelled booking. The deletion takes the event record with it: when Ana
    reconnects, nothing removes the event, and the cancelled meeting stays in Ana's calendar (and in Pat's,
    whom Google invited) for good. The deletion should wait (or the record should survive it)."""
    ana = make_rep("Ana")
    conn = google_connect(fake_google, ana)
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    assert len(live_events(fake_google, conn)) == 1

    connection_mark_disconnected(connection_id=conn.pk, reason="invalid_grant")
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(token=created["manage_token"], reason="no longer needed")
    assert not OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING).exists()
    assert BookingEvent.objects.get(booking_id=created["id"]).state == BookingEvent.State.ACTIVE  # pending

    try:
        bookings_delete(booking_ids=[created["id"]], now=NOW)
    except BookingError:
        return  # refused while the calendar still holds the event: fine
    assert not Booking.objects.filter(pk=created["id"]).exists()

    conn = google_connect(fake_google, ana)  # Ana reconnects the same account
    connection_events_resync(connection_id=conn.pk, now=NOW)
    left = [(e["summary"], e["start"]) for e in live_events(fake_google, conn)]
    assert left == [], f"the cancelled (and deleted) meeting stays in Ana's calendar: {left}"


def calendar_parts(message) -> list:
    from icalendar import Calendar

    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def test_a_host_who_connects_a_calendar_after_the_booking_is_sent_the_cancel_of_batons_invitation(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Ana has no calendar connected when Pat books, so her "Confirmed" e-mail carries Baton's iCalendar
    REQUEST, which her mail client puts in her calendar. Ana then connects a Google calendar that receives
    bookings (it never had this meeting), and Pat cancels. Ana's "Cancelled" e-mail has no calendar part
    (her calendar is judged to hold the provider's event) and the write-back has no event of hers to remove:
    the cancelled meeting stays in Ana's calendar. (The prospect's side of this was fixed with
    ``Booking.prospect_invitation``; the hosts' was not.)"""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    (confirmed,) = [m for m in mailoutbox if m.to == [ana.email]]
    (request,) = calendar_parts(confirmed)
    uid = str(request.walk("VEVENT")[0]["UID"])

    connection = CalendarConnection.objects.create(
        rep=ana, provider="google", account_email=ana.email, secret_blob="x", last_success_at=NOW
    )
    RepCalendar.objects.create(
        connection=connection, external_id="primary", can_write=True, receives_bookings=True
    )
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(token=created["manage_token"], reason="no longer needed")
    from booking import outbox

    for row in OutboxMessage.objects.filter(event="booking.cancelled", handler="email.host"):
        assert outbox.deliver(message_id=row.pk, now=NOW) == "delivered"
    (cancelled,) = [m for m in mailoutbox[sent:] if m.to == [ana.email]]
    held = [(str(c["METHOD"]), str(c.walk("VEVENT")[0]["UID"])) for c in calendar_parts(cancelled)]
    assert held == [("CANCEL", uid)], (
        f"Ana's calendar keeps Baton's invitation of the cancelled meeting: {held}"
    )


INSERT = r"/calendar/v3/calendars/[^/]+/events"


def test_a_cancellation_after_a_timed_out_event_create_removes_the_event_google_made(
    settings, fake_google, django_capture_on_commit_callbacks
):
    """The write of Ana's new booking times out at Baton while Google goes on and creates the event (and
    invites Pat); the outbox will retry. Before the retry, Pat cancels. The write-back then finds Ana's event
    record never written ("cancelled", no event id) and does nothing, though Google holds the event under
    the id Baton chose itself: the cancelled meeting stays in Ana's and Pat's calendars for good. (A retry
    of the confirmed booking would have found it by that id; a change that no longer wants it never looks.)"""
    import time

    from calendars.errors import CalendarWriteFailed
    from calendars.services.writeback import booking_events_sync

    ana = make_rep("Ana")
    conn = google_connect(fake_google, ana)
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    with django_capture_on_commit_callbacks(execute=False):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 1
    fault = fake_google.add_fault("POST", INSERT, delay=2, passthrough=True, times=10)
    with pytest.raises(CalendarWriteFailed):
        booking_events_sync(booking_id=created["id"])
    fault.times = 0
    time.sleep(2.5)  # Google finished the insert the client gave up on
    assert len(live_events(fake_google, conn)) == 1

    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(token=created["manage_token"])
    booking_events_sync(booking_id=created["id"])
    left = [(e["summary"], e["start"]["dateTime"]) for e in live_events(fake_google, conn)]
    assert left == [], f"the cancelled meeting stays in Ana's calendar (Pat invited): {left}"


def test_a_late_retry_of_an_older_reschedule_email_is_not_sent(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pat moves the meeting to Wednesday 10:00 and, a minute later, to Thursday 10:00. The first move's
    e-mail fails once (a transient SMTP error) and its retry goes out after the second move's. Pat's last
    e-mail then reads "Updated: Intro call, Wednesday 4 March 2026, 10:00–10:30" with a REQUEST for that
    time: Pat, who still holds the meeting, is told the superseded time last (only a calendar that checks
    SEQUENCE ignores it) and may turn up a day early. A late REQUEST of an older state is withheld only
    from someone who no longer holds the meeting (``emails._superseded``)."""
    from booking import outbox
    from booking.services import booking_reschedule

    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="Europe/Berlin"
        ).body
    wednesday, thursday = START + dt.timedelta(days=1), START + dt.timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=False):
        booking_reschedule(token=created["manage_token"], start=wednesday)
    (first,) = OutboxMessage.objects.filter(event="booking.rescheduled", handler="email.prospect")
    with django_capture_on_commit_callbacks(execute=False):
        booking_reschedule(token=created["manage_token"], start=thursday)
    (second,) = OutboxMessage.objects.filter(event="booking.rescheduled", handler="email.prospect").exclude(
        pk=first.pk
    )
    sent = len(mailoutbox)
    assert outbox.deliver(message_id=second.pk, now=NOW + dt.timedelta(minutes=1)) == "delivered"
    outbox.deliver(message_id=first.pk, now=NOW + dt.timedelta(minutes=2))  # the first one's retry
    to_pat = [m for m in mailoutbox[sent:] if m.to == [PROSPECT]]
    assert "Thursday 5 March 2026" in to_pat[0].body
    late = [m.body.splitlines()[3] for m in to_pat[1:]]
    assert not [line for line in late if "Wednesday" in line], (
        f"after the Thursday e-mail, Pat is told the meeting is {late}"
    )


def test_a_host_whose_calendar_receives_bookings_since_has_batons_invitation_withdrawn_on_a_move(
    mailoutbox, django_capture_on_commit_callbacks
):
    """As above, but Pat moves the meeting: Ana's calendar gets the write-back's event of the new time, and
    her "Updated" e-mail CANCELs Baton's invitation of the old time (it stayed beside the new event)."""
    from booking import outbox
    from booking.models import BookingHost
    from booking.services import booking_reschedule

    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    (confirmed,) = [m for m in mailoutbox if m.to == [ana.email]]
    uid = str(calendar_parts(confirmed)[0].walk("VEVENT")[0]["UID"])
    connection = CalendarConnection.objects.create(
        rep=ana, provider="google", account_email=ana.email, secret_blob="x", last_success_at=NOW
    )
    RepCalendar.objects.create(
        connection=connection, external_id="primary", can_write=True, receives_bookings=True
    )
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=False):
        booking_reschedule(token=created["manage_token"], start=START + dt.timedelta(days=1))
    for row in OutboxMessage.objects.filter(event="booking.rescheduled", handler="email.host"):
        assert outbox.deliver(message_id=row.pk, now=NOW) == "delivered"
    (updated,) = [m for m in mailoutbox[sent:] if m.to == [ana.email]]
    (part,) = calendar_parts(updated)
    event = part.walk("VEVENT")[0]
    assert (str(part["METHOD"]), str(event["UID"])) == ("CANCEL", uid)
    assert event["DTSTART"].dt == START  # Baton's invitation as Ana held it
    assert BookingHost.objects.get(booking_id=created["id"], rep=ana).invitation == "provider"

    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(token=created["manage_token"])
    for row in OutboxMessage.objects.filter(event="booking.cancelled", handler="email.host"):
        assert outbox.deliver(message_id=row.pk, now=NOW) == "delivered"
    (cancelled,) = [m for m in mailoutbox[sent:] if m.to == [ana.email]]
    assert calendar_parts(cancelled) == []  # the write-back removes the event she holds now
