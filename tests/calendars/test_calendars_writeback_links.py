"""The meeting's video link in the write-back: co-hosts' events show the lead's link even when the lead's
event got it late, a co-host who becomes the lead gets a link of their own, and a Meet link Google makes
asynchronously still reaches Baton."""

from __future__ import annotations

import time

import pytest

from booking.models import BookingHost
from calendars.errors import CalendarWriteFailed
from calendars.models import BookingEvent
from calendars.selectors import booking_join_url
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import google_events, ms_events

pytestmark = pytest.mark.django_db
INSERT = r"/calendar/v3/calendars/[^/]+/events"


def _lead_leaves(booking, lead, co_host) -> None:
    """The lead leaves a group booking; the co-host takes the lead's seat (the first active host)."""
    BookingHost.objects.filter(booking=booking, rep=lead).update(active=False)
    BookingHost.objects.filter(booking=booking, rep=co_host).update(role="ae")
    booking.sequence += 1
    booking.save()


def test_a_co_host_shows_the_leads_link_when_the_leads_event_was_written_after_theirs(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    """The lead's Google write fails once (503) and the co-host's succeeds without a link (the lead has
    none yet); the outbox's retry creates the lead's event with its Meet link and writes the co-host's
    event again with that link, though the booking's SEQUENCE did not change."""
    lead, co_host = make_rep("Ann"), make_rep("Sol")
    lead_conn, co_conn = google_connection(lead), ms_connection(co_host)
    fake_google.add_fault("POST", INSERT, status=503, times=-1)
    booking = make_booking(lead, co_host)
    with pytest.raises(CalendarWriteFailed):
        booking_events_sync(booking_id=booking.pk)
    fake_google.clear_faults()
    assert booking_events_sync(booking_id=booking.pk) == {lead.pk: "created", co_host.pk: "updated"}
    (lead_event,) = google_events(fake_google, lead_conn)
    link = lead_event["hangoutLink"]
    assert booking_join_url(booking.pk, rep_id=lead.pk) == link
    (co_event,) = ms_events(fake_ms, co_conn)
    assert co_event["location"]["displayName"] == link
    assert booking_events_sync(booking_id=booking.pk) == {lead.pk: "unchanged", co_host.pk: "unchanged"}
    assert [i["action"] for i in fake_google.invitations + fake_ms.invitations] == ["created"]


def test_a_co_host_who_becomes_the_lead_invites_the_prospect_with_a_meet_link_of_their_own(
    make_rep, google_connection, fake_google, make_booking
):
    """The new lead's event (the co-host's, updated in place) invites the prospect and gets a Meet
    conference of its own; the former lead's link, whose event is cancelled, is no longer its location."""
    lead, co_host = make_rep("Ann"), make_rep("Sol")
    lead_conn, co_conn = google_connection(lead), google_connection(co_host)
    booking = make_booking(lead, co_host)
    booking_events_sync(booking_id=booking.pk)
    (old_lead_event,) = google_events(fake_google, lead_conn)
    old_link = old_lead_event["hangoutLink"]
    (co_event,) = google_events(fake_google, co_conn)
    assert co_event["location"] == old_link and "hangoutLink" not in co_event
    _lead_leaves(booking, lead, co_host)
    assert booking_events_sync(booking_id=booking.pk) == {co_host.pk: "updated", lead.pk: "cancelled"}
    assert google_events(fake_google, lead_conn) == []
    (event,) = google_events(fake_google, co_conn)
    assert event["id"] == co_event["id"]  # updated in place: the prospect gets one invitation, not two events
    assert [a["email"] for a in event["attendees"]] == ["pat@prospect.example"]
    new_link = booking_join_url(booking.pk, rep_id=co_host.pk)
    assert new_link and new_link != old_link and event["hangoutLink"] == new_link
    assert event["location"] == ""
    assert booking_join_url(booking.pk) == new_link
    # a later update asks for no second conference
    booking.sequence += 1
    booking.save()
    assert booking_events_sync(booking_id=booking.pk)[co_host.pk] == "updated"
    (event,) = google_events(fake_google, co_conn)
    assert event["hangoutLink"] == new_link
    patches = fake_google.requests_to("PATCH", INSERT + "/[^/]+")
    assert sum("conferenceData" in p.json() for p in patches) == 1


def test_a_microsoft_co_host_who_becomes_the_lead_gets_a_teams_meeting(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    lead, co_host = make_rep("Ann"), make_rep("Sol")
    google_connection(lead)
    co_conn = ms_connection(co_host)
    booking = make_booking(lead, co_host)
    booking_events_sync(booking_id=booking.pk)
    old_link = booking_join_url(booking.pk)
    _lead_leaves(booking, lead, co_host)
    booking_events_sync(booking_id=booking.pk)
    (event,) = ms_events(fake_ms, co_conn)
    new_link = booking_join_url(booking.pk, rep_id=co_host.pk)
    assert (
        new_link.startswith("https://teams.microsoft.com/") and event["onlineMeeting"]["joinUrl"] == new_link
    )
    assert event["location"]["displayName"] != old_link
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == ["pat@prospect.example"]


def _google_makes_conferences(fake_google, monkeypatch, status: str) -> None:
    def conference(event, req):
        create = (event.get("conferenceData") or {}).get("createRequest")
        if create and req.query.get("conferenceDataVersion") == "1":
            event["conferenceData"] = {"createRequest": {**create, "status": {"statusCode": status}}}

    monkeypatch.setattr(fake_google, "_conference", conference)


def test_a_meet_link_google_makes_asynchronously_reaches_baton_without_a_second_event(
    monkeypatch, make_rep, google_connection, fake_google, make_booking
):
    """events.insert may answer with the conference create request "pending" and no link yet. Baton re-reads
    the event briefly; still pending, it records the event but leaves the write to be retried, and the
    retry (an update of the same event) reads the link Google has made meanwhile."""
    _google_makes_conferences(fake_google, monkeypatch, "pending")
    rep = make_rep()
    conn = google_connection(rep)
    booking = make_booking(rep)
    began = time.monotonic()
    with pytest.raises(CalendarWriteFailed):
        booking_events_sync(booking_id=booking.pk)
    assert time.monotonic() - began < 5  # re-read briefly, not waited for
    assert len(fake_google.requests_to("GET", INSERT + "/[^/]+")) >= 2
    (event,) = google_events(fake_google, conn)
    row = BookingEvent.objects.get(booking=booking)
    assert (row.external_event_id, row.state, row.join_url) == (event["id"], BookingEvent.State.ACTIVE, "")
    link = "https://meet.google.com/abc-defg-hij"  # Google finishes the conference a moment later
    with fake_google.lock:
        stored = fake_google.calendar(conn.account_email).events[event["id"]]
        stored["hangoutLink"] = link
        create = {**stored["conferenceData"]["createRequest"], "status": {"statusCode": "success"}}
        stored["conferenceData"] = {
            "createRequest": create,
            "entryPoints": [{"entryPointType": "video", "uri": link}],
        }
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "updated"}  # the outbox's retry
    assert booking_join_url(booking.pk) == link
    assert len(google_events(fake_google, conn)) == 1
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "unchanged"}


def test_a_failed_meet_conference_is_logged_and_the_write_done(
    monkeypatch, caplog, make_rep, google_connection, fake_google, make_booking
):
    _google_makes_conferences(fake_google, monkeypatch, "failure")
    rep = make_rep()
    google_connection(rep)
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert booking_join_url(booking.pk) == ""
    assert "could not create the Meet conference" in caplog.text
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "unchanged"}
