"""What hosts are told when a booking changes under them: a host released by a reassignment or a
reschedule gets a CANCEL of the meeting as they held it (its time, its organizer, themselves among the
attendees, RFC 5546 §3.2.5), a host new to the meeting is told of a new meeting, not an update, and a
cancellation's reason reaches the hosts (an admin's reassignment reason, an internal note, does not)."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from booking.models import Booking
from booking.services import booking_reassign
from calendars.models import BusyInterval
from routing.models import PoolMember
from tests.booking.booking_factories import body, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"
MAILBOX = "meetings@example.com"


def event_of(message):
    (part,) = [c for c, kind in message.alternatives if kind.startswith("text/calendar")]
    cal = Calendar.from_ical(part)
    return cal, cal.walk("VEVENT")[0]


def addresses(event, name) -> list[str]:
    value = event.get(name)
    values = value if isinstance(value, list) else ([value] if value is not None else [])
    return [str(v).lower() for v in values]


def book(api, capture) -> dict:
    with capture(execute=True):
        response = api.post(URL, body(), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_host_reassigned_away_gets_a_cancel_that_names_them(
    api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.DEFAULT_FROM_EMAIL = f"Baton <{MAILBOX}>"
    bo = make_rep("Bo", tz="Europe/London")
    member = PoolMember.objects.create(pool=meeting_type.pool, rep=bo, rank=1)
    booking = Booking.objects.get(pk=book(api, django_capture_on_commit_callbacks)["id"])
    assert booking.hosts.get(active=True).rep_id == rep.pk
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(booking_id=booking.pk, to_member_id=member.pk, code="other", reason="Ana overbooked")
    (to_ana,) = [m for m in mailoutbox[sent:] if m.to == [rep.email]]
    cal, event = event_of(to_ana)
    assert cal["METHOD"] == "CANCEL"
    # the organizer of Ana's copy (a host's copy is organized by Baton's mailbox, the e-mail's sender, not by
    # the lead: a REQUEST to its own organizer invites no one; before: Bo, then Ana herself), naming her lead
    # then, and Ana as the attendee it removes
    assert addresses(event, "ORGANIZER") == [f"mailto:{MAILBOX}"]
    assert str(event["ORGANIZER"].params["CN"]) == f"{rep.name} (via Baton)"
    assert addresses(event, "ATTENDEE") == [f"mailto:{rep.email}"]
    assert "Ana overbooked" not in to_ana.body  # the admin's reason is an internal note
    (to_bo,) = [m for m in mailoutbox[sent:] if m.to == [bo.email]]
    assert to_bo.subject.startswith("Confirmed: ")  # new to Bo (before: "Updated")
    _, bo_event = event_of(to_bo)
    # the same organizer as every host copy's (before: Bo, the new lead), Bo invited and accepting
    assert addresses(bo_event, "ORGANIZER") == [f"mailto:{MAILBOX}"]
    (bo_attendee,) = [a for a in bo_event["ATTENDEE"] if str(a).lower() == f"mailto:{bo.email}"]
    assert bo_attendee.params["PARTSTAT"] == "ACCEPTED" and "RSVP" not in bo_attendee.params


def test_the_hosts_cancellation_email_carries_the_prospects_reason(
    api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks
):
    token = book(api, django_capture_on_commit_callbacks)["manage_token"]
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/bookings/{token}/cancel", {"reason": "We chose another vendor"}, format="json"
        )
    assert response.status_code == 200
    (to_host,) = [m for m in mailoutbox[sent:] if m.to == [rep.email]]
    assert to_host.subject.startswith("Cancelled")
    assert "Reason: We chose another vendor" in to_host.body, to_host.body
    (to_prospect,) = [m for m in mailoutbox[sent:] if m.to != [rep.email]]
    assert "another vendor" not in to_prospect.body  # their own words need not come back to them


@pytest.fixture
def rerouted(api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks):
    """A booking on Tue 3 March 10:00 Berlin with Ana, moved by the prospect to Wed 4 March 10:00, when Ana
    is busy: it goes to Bo. Returns (Ana's messages, Bo's messages) of the reschedule."""
    bo = make_rep("Bo")
    PoolMember.objects.create(pool=meeting_type.pool, rep=bo, rank=1)
    meeting_type.pool.strategy = "first_available"
    meeting_type.pool.save()
    token = book(api, django_capture_on_commit_callbacks)["manage_token"]
    assert Booking.objects.get().hosts.get().rep_id == rep.pk
    busy = dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC)
    BusyInterval.objects.create(rep=rep, start=busy, end=busy + dt.timedelta(hours=1))
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-04T10:00:00+01:00"}, format="json"
        )
    assert response.status_code == 200, response.json()
    new = mailoutbox[sent:]
    return [m for m in new if m.to == [rep.email]], [m for m in new if m.to == [bo.email]]


def test_a_host_released_by_a_reschedule_is_told_the_time_they_held(rerouted):
    (to_ana,), _ = rerouted
    assert "You no longer host this meeting." in to_ana.body
    assert "Tuesday 3 March 2026, 10:00–10:30" in to_ana.body, to_ana.body  # before: Wednesday's time
    cal, event = event_of(to_ana)
    assert cal["METHOD"] == "CANCEL"
    assert event.decoded("DTSTART") == dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)


def test_a_host_routed_a_rescheduled_meeting_is_told_of_a_new_meeting(rerouted):
    _, (to_bo,) = rerouted
    assert to_bo.subject.startswith("Confirmed: "), to_bo.subject
    assert "Wednesday 4 March 2026, 10:00" in to_bo.body
