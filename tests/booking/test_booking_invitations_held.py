"""The invitation a prospect or co-host holds is the one later e-mails update or cancel. Which invitation the
prospect holds is recorded as the e-mails send it (``Booking.prospect_invitation``), not judged from the lead
host's calendar connection at the time of a change: a lead who connected a calendar after a booking left
Baton's invitation in the prospect's calendar on a cancellation or a move. A co-host whose invitation is
Baton's e-mail gets the video link of the lead's calendar event, and only the current lead's. An e-mail of an
older state delivered late changes nothing recorded. Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from cryptography.fernet import Fernet
from icalendar import Calendar

from booking import outbox
from booking.models import Booking, OutboxMessage
from booking.services import booking_cancel, booking_create, booking_reassign, booking_reschedule
from calendars.models import Calendar as RepCalendar
from calendars.models import CalendarConnection
from calendars.selectors import booking_join_url
from calendars.services.connections import calendars_refresh, connection_create
from calendars.services.sync import calendar_sync
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, START, body, make_meeting_type, make_pool, make_rep
from tests.fakes.google import FakeGoogle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"
PROSPECT = "pat@example.org"


def book(api, capture, **kw) -> dict:
    with capture(execute=True):
        response = api.post(URL, body(**kw), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def invitations(message) -> list[Calendar]:
    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def to_prospect(messages) -> list:
    return [m for m in messages if m.to == [PROSPECT]]


def methods(message) -> list[str]:
    return [str(c["METHOD"]) for c in invitations(message)]


def prospect_rows(event: str) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(event=event, handler="email.prospect").order_by("pk"))


def receiving_google_calendar(rep) -> None:
    """The rep connects a Google calendar that receives their bookings (Google then invites the prospect)."""
    connection = CalendarConnection.objects.create(
        rep=rep, provider="google", account_email=rep.email, secret_blob="x", last_success_at=NOW
    )
    RepCalendar.objects.create(
        connection=connection, external_id="primary", can_write=True, receives_bookings=True
    )


def test_a_cancellation_cancels_the_invitation_baton_sent_after_the_host_connects_a_calendar(
    api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books with Ana, who has no calendar connected yet: Pat's confirmation carries Baton's iCalendar
    REQUEST. Ana then connects her Google calendar (which never had this meeting), and Pat cancels: the
    cancellation CANCELs the invitation Pat holds, Baton's (same UID, higher SEQUENCE). It had no calendar
    part, since the lead's calendar invites by then, and the cancelled meeting stayed in Pat's calendar."""
    token = book(api, django_capture_on_commit_callbacks)["manage_token"]
    (confirmation,) = to_prospect(mailoutbox)
    (request,) = invitations(confirmation)
    held = request.walk("VEVENT")[0]
    receiving_google_calendar(rep)
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/bookings/{token}/cancel", {}, format="json")
    assert response.status_code == 200
    (cancelled,) = to_prospect(mailoutbox[sent:])
    cals = invitations(cancelled)
    assert [str(c["METHOD"]) for c in cals] == ["CANCEL"], "Pat's calendar keeps the cancelled meeting"
    event = cals[0].walk("VEVENT")[0]
    assert str(event["UID"]) == str(held["UID"])
    assert int(event["SEQUENCE"]) > int(held["SEQUENCE"])


def test_a_reschedule_after_the_host_connects_a_calendar_moves_or_withdraws_batons_invitation(
    api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books with Ana, who has no calendar connected yet (Baton's REQUEST, Tuesday 10:00). Ana connects
    her Google calendar; Pat moves the meeting to Wednesday and Ana keeps it, so the write-back creates an
    event in Ana's calendar that invites Pat (Google's own UID). Pat's "Updated" e-mail withdraws Baton's
    invitation under its UID; it had no calendar part, and Pat's calendar kept Baton's Tuesday event beside
    Google's Wednesday one."""
    token = book(api, django_capture_on_commit_callbacks)["manage_token"]
    (confirmation,) = to_prospect(mailoutbox)
    (request,) = invitations(confirmation)
    uid = str(request.walk("VEVENT")[0]["UID"])
    receiving_google_calendar(rep)
    sent = len(mailoutbox)
    response = api.post(
        f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-04T10:00:00+01:00"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["hosts"][0]["name"] == "Ana"
    for row in OutboxMessage.objects.filter(event="booking.rescheduled", handler__startswith="email."):
        outbox.deliver(message_id=row.pk, now=NOW + dt.timedelta(hours=1))
    (update,) = to_prospect(mailoutbox[sent:])
    assert [str(c.walk("VEVENT")[0]["UID"]) for c in invitations(update)] == [uid], (
        "Pat's calendar keeps Baton's event at the old time next to Google's new one"
    )


@pytest.fixture
def fake_google(settings, monkeypatch):
    """A fake Google Calendar server on loopback (as ``tests/calendars/conftest.py`` sets one up)."""
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.GOOGLE_CLIENT_ID = "baton-test.apps.googleusercontent.com"
    settings.GOOGLE_CLIENT_SECRET = "google-client-secret-for-tests"
    settings.CALENDAR_PUSH_ENABLED = False
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 5
    server = FakeGoogle().start()
    settings.GOOGLE_API_ENDPOINT = server.api_endpoint
    settings.GOOGLE_TOKEN_URI = f"{server.base_url}/token"
    settings.GOOGLE_REVOKE_URI = f"{server.base_url}/revoke"
    settings.GOOGLE_AUTH_URI = f"{server.base_url}/o/oauth2/auth"
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setattr("googleapiclient.http.time", types.SimpleNamespace(sleep=lambda seconds: None))
    yield server
    server.stop()


def google_connect(server, rep) -> None:
    """The rep connects their (fake) Google account, as the OAuth callback would; its primary calendar
    blocks their time and receives their bookings."""
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


def test_a_co_host_without_a_calendar_is_sent_the_meetings_video_link(
    fake_google, mailoutbox, django_capture_on_commit_callbacks
):
    """A group demo: Ann (AE, Google calendar) leads, Sol (SE) has no calendar connected, so Sol's
    invitation is Baton's e-mailed .ics. Pat books; Ann's Google event gets a Meet link. Pat moves the
    meeting: Sol's "Updated" e-mail and its invitation carry the Meet link (as the write-back gives it to
    co-hosts' calendar events); they said only "Video call", and Sol could not join."""
    ann, sol = make_rep("Ann AE"), make_rep("Sol SE")
    google_connect(fake_google, ann)
    meeting_type = make_meeting_type(make_pool("group", [ann, sol], roles=["ae", "se"]), slug="group-demo")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    assert [h["name"] for h in created["hosts"]] == ["Ann AE", "Sol SE"]
    link = booking_join_url(created["id"])
    assert link.startswith("https://meet.google.com/")
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reschedule(token=created["manage_token"], start=START + dt.timedelta(days=1))
    (to_sol,) = [m for m in mailoutbox[sent:] if m.to == [sol.email]]
    (invitation,) = invitations(to_sol)
    event = invitation.walk("VEVENT")[0]
    told = [to_sol.body, str(event.get("LOCATION", "")), str(event.get("DESCRIPTION", ""))]
    assert any(link in text for text in told), f"Sol is never sent the Meet link: {told}"


def test_a_late_confirmation_does_not_overwrite_the_invitation_a_later_change_recorded(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books with Ana (no calendar yet); the confirmation e-mail's first attempt fails and the outbox
    retries it later. Ana connects her Google calendar, and an admin reassigns the meeting to Bob, who has no
    calendar: Pat's "Updated" e-mail goes out first with Baton's invitation, recorded as ``baton``. The
    confirmation's late retry (SEQUENCE 0) neither changes that record nor withdraws Baton's invitation, and
    Pat's later cancellation CANCELs it. (It was judged by Ana's calendar at delivery: a CANCEL saying Ana's
    calendar invites, the record overwritten, and no .ics in the cancellation.)"""
    ana, bob = make_rep("Ana"), make_rep("Bob")
    pool = make_pool("round_robin", [ana, bob])
    meeting_type = make_meeting_type(pool, slug="intro")
    with django_capture_on_commit_callbacks(execute=False):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    assert [h["name"] for h in created["hosts"]] == ["Ana"]
    (confirmation,) = prospect_rows("booking.confirmed")  # its delivery failed: pending, retried later

    receiving_google_calendar(ana)
    bob_member = PoolMember.objects.get(pool=pool, rep=bob)
    with django_capture_on_commit_callbacks(execute=False):
        booking_reassign(
            booking_id=created["id"], to_member_id=bob_member.pk, code="other", reason="Ana away"
        )
    (update,) = prospect_rows("booking.rescheduled")
    assert outbox.deliver(message_id=update.pk, now=NOW + dt.timedelta(minutes=1)) == "delivered"
    (updated,) = to_prospect(mailoutbox)
    assert methods(updated) == ["REQUEST"]  # Baton's invitation of Bob's meeting, now in Pat's calendar
    assert Booking.objects.get(pk=created["id"]).prospect_invitation == "baton"

    # the confirmation's retry, after the update
    assert outbox.deliver(message_id=confirmation.pk, now=NOW + dt.timedelta(minutes=2)) == "delivered"

    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(token=created["manage_token"])
    (cancel_row,) = prospect_rows("booking.cancelled")
    assert outbox.deliver(message_id=cancel_row.pk, now=NOW + dt.timedelta(minutes=3)) == "delivered"
    (cancelled,) = to_prospect(mailoutbox[sent:])
    assert methods(cancelled) == ["CANCEL"], (
        "Pat's calendar keeps Baton's invitation of the cancelled meeting "
        f"(recorded {Booking.objects.get(pk=created['id']).prospect_invitation!r})"
    )


def test_a_meeting_reassigned_to_a_host_without_a_calendar_is_not_sent_the_old_hosts_meet_link(
    fake_google, mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books a video call with Ann, whose Google calendar gives the meeting a Meet link; an admin
    reassigns it to Bob, who has no calendar (the write-back then cancels Ann's event). The "Updated" e-mails
    do not carry Ann's link (they did: "Where:", the invitation's LOCATION and Bob's "Join:" named the room
    of Ann's cancelled event); they name the meeting type's "Video call"."""
    ann, bob = make_rep("Ann"), make_rep("Bob")
    google_connect(fake_google, ann)
    pool = make_pool("round_robin", [ann, bob])
    meeting_type = make_meeting_type(pool, slug="video-intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
        ).body
    assert [h["name"] for h in created["hosts"]] == ["Ann"]
    link = booking_join_url(created["id"])
    assert link.startswith("https://meet.google.com/")
    sent = len(mailoutbox)
    bob_member = PoolMember.objects.get(pool=pool, rep=bob)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(
            booking_id=created["id"], to_member_id=bob_member.pk, code="other", reason="Ann away"
        )
    assert booking_join_url(created["id"]) == "", "Ann's event (and its Meet link) is cancelled"
    (to_pat,) = to_prospect(mailoutbox[sent:])
    (to_bob,) = [m for m in mailoutbox[sent:] if m.to == [bob.email]]
    told = [to_pat.body, to_bob.body] + [
        str(c.walk("VEVENT")[0].get("LOCATION", "")) for c in invitations(to_pat) + invitations(to_bob)
    ]
    assert not [text for text in told if link in text], f"Ann's cancelled event's Meet link is sent: {told}"
