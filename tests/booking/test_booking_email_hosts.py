"""Booking e-mails and their iCalendar invitations as hosts and calendar clients read them across a
booking's life: a co-host's video link, who they host with, a released host's subject and uninvite, quotes in
names."""

from __future__ import annotations

from email import message_from_bytes

import pytest
from icalendar import Calendar

from booking.services import booking_create, booking_reassign
from calendars.selectors import booking_join_url
from routing.models import PoolMember
from tests.booking.booking_factories import START, make_meeting_type, make_pool, make_rep
from tests.booking.test_booking_invitations_held import fake_google, google_connect

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"
__all__ = ["fake_google"]  # the fixture, used by name


def invitations(message) -> list[Calendar]:
    """The calendar parts of ``message``, read back from the bytes a mail server gets."""
    raw = message_from_bytes(message.message().as_bytes(linesep="\r\n"))
    return [
        Calendar.from_ical(part.get_payload(decode=True))
        for part in raw.walk()
        if part.get_content_type() == "text/calendar"
    ]


def raw_calendars(message) -> list[bytes]:
    raw = message_from_bytes(message.message().as_bytes(linesep="\r\n"))
    return [
        part.get_payload(decode=True) for part in raw.walk() if part.get_content_type() == "text/calendar"
    ]


def create(meeting_type, capture, *, name: str = "Pat Prospect") -> dict:
    with capture(execute=True):
        return booking_create(
            meeting_type=meeting_type, start=START, name=name, email=PROSPECT, timezone="Europe/Berlin"
        ).body


def reassign(capture, booking_id: int, pool, rep, **kw) -> None:
    with capture(execute=True):
        booking_reassign(
            booking_id=booking_id,
            to_member_id=PoolMember.objects.get(pool=pool, rep=rep).pk,
            code="other",
            reason="rebalance",
            **kw,
        )


def test_a_co_host_without_a_calendar_is_sent_the_video_link_of_a_new_meeting(
    fake_google, mailoutbox, django_capture_on_commit_callbacks
):
    """A group video demo: Ann (AE) leads with a Google calendar, which gives the meeting a Meet link and
    invites Pat; Sol (SE) has no calendar connected, so Baton's e-mail is Sol's only invitation. Pat books
    and never changes the meeting. Sol's "Confirmed" e-mail says "Where: Video call" and its invitation's
    LOCATION is "Video call": the Meet link is nowhere, so on the day Sol cannot join the call. (A later
    reschedule sends it — ``emails._join_url`` returns "" for a new booking because the lead's event is
    written after the commit — but a meeting that is not moved never gets it.)"""
    ann, sol = make_rep("Ann AE"), make_rep("Sol SE")
    google_connect(fake_google, ann)
    meeting_type = make_meeting_type(make_pool("group", [ann, sol], roles=["ae", "se"]), slug="group-demo")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    assert [h["name"] for h in created["hosts"]] == ["Ann AE", "Sol SE"]
    link = booking_join_url(created["id"])
    assert link.startswith("https://meet.google.com/")
    (to_sol,) = [m for m in mailoutbox if m.to == [sol.email]]
    told = [to_sol.body] + [
        str(c.walk("VEVENT")[0].get(p, "")) for c in invitations(to_sol) for p in ("LOCATION", "DESCRIPTION")
    ]
    assert any(link in text for text in told), f"Sol is never sent the Meet link: {told}"


@pytest.fixture
def group_reassigned(mailoutbox, django_capture_on_commit_callbacks, settings):
    """A group demo: AE seat Ann (or Alma), SE seat Sol. Pat books with Ann and Sol; an admin hands the AE
    seat from Ann to Alma. Returns (the reps, the e-mails of the reassignment)."""
    settings.DEFAULT_FROM_EMAIL = "Baton <meetings@example.com>"
    ann, al, sol = make_rep("Ann Berg"), make_rep("Alma Ortiz"), make_rep("Sol Reyes")
    pool = make_pool("group", [ann, al, sol], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="group-demo")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    assert [h["name"] for h in created["hosts"]] == ["Ann Berg", "Sol Reyes"]
    sent = len(mailoutbox)
    reassign(django_capture_on_commit_callbacks, created["id"], pool, al, from_rep_id=ann.pk)
    return (ann, al, sol), mailoutbox[sent:]


def test_a_co_hosts_update_says_who_they_now_host_the_meeting_with(group_reassigned):
    """Sol (SE) co-hosts Pat's demo with Ann (AE); an admin gives the AE seat to Alma. Sol's e-mail is
    "Updated: Intro call with Pat Prospect", with the same time and place as before and nothing else: it
    names no co-host, neither in the confirmation (who is the AE?) nor now (what was updated? that Alma,
    not Ann, is the AE Sol must prepare the demo with). Pat's own e-mail says "With: Alma Ortiz, Sol Reyes";
    a host whose calendar receives bookings gets no .ics, so the text is all Sol has."""
    (_, al, sol), sent = group_reassigned
    (to_sol,) = [m for m in sent if m.to == [sol.email]]
    assert to_sol.subject.startswith("Updated: ")
    assert al.name in to_sol.body, to_sol.body


def test_a_host_reassigned_away_is_not_told_the_meeting_was_cancelled(group_reassigned):
    """Ann's seat went to Alma; the meeting with Pat goes on. Ann's e-mail's subject is "Cancelled: Intro call
    with Pat Prospect" — in her inbox (and in the notification on her phone) the prospect cancelled, a lost
    lead, though nothing was cancelled: only the body says "You no longer host this meeting." The subject
    of a host's release should say so (e.g. "Reassigned: …"), as "Cancelled: …" does for a cancellation."""
    (ann, _, _), sent = group_reassigned
    (to_ann,) = [m for m in sent if m.to == [ann.email]]
    assert "You no longer host this meeting." in to_ann.body
    assert not to_ann.subject.startswith("Cancelled"), to_ann.subject


def test_the_cancel_that_removes_one_host_from_a_meeting_that_goes_on_does_not_cancel_the_meeting(
    group_reassigned,
):
    """Ann's release is an iTIP CANCEL naming only her (RFC 5546 §3.2.5, "uninviting specific
    Attendees"), as the code means it; but it also carries ``STATUS:CANCELLED``, which that section reserves
    for cancelling the entire event ("If uninviting specific Attendees, then MUST NOT be included"). A
    client, or a delegate or shared calendar holding the same UID, reads the meeting with Pat, Sol and Alma as
    called off, and an iTIP validator refuses the message."""
    (ann, _, _), sent = group_reassigned
    (to_ann,) = [m for m in sent if m.to == [ann.email]]
    (cal,) = invitations(to_ann)
    event = cal.walk("VEVENT")[0]
    assert str(cal["METHOD"]) == "CANCEL"
    attendees = event.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert [str(a).lower() for a in attendees] == [f"mailto:{ann.email}"]  # the attendee it removes
    assert event.get("STATUS") is None, f"STATUS:{event.get('STATUS')} in an uninvite CANCEL"


def test_a_quote_in_a_name_reaches_calendars_as_a_quote(mailoutbox, django_capture_on_commit_callbacks):
    """Pat books as ``Robert "Bob" Smith``. The invitations' CN parameters carry ``Robert ^'Bob^' Smith``:
    ``icalendar`` encodes the quote with RFC 6868's caret escape, which Outlook/Exchange and Google Calendar
    do not decode, so the host's attendee list (and Pat's own) shows the name with ``^'`` in it. A
    parameter value cannot hold a DQUOTE in RFC 5545; a name that has one is sent with a character every
    client shows (an apostrophe or typographic quotes), not an escape most clients print literally."""
    ana = make_rep('Ana "The Closer" Ruiz')
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    create(meeting_type, django_capture_on_commit_callbacks, name='Robert "Bob" Smith')
    assert len(mailoutbox) == 2
    for message in mailoutbox:
        for raw in raw_calendars(message):
            unfolded = raw.replace(b"\r\n ", b"")
            cn = [line for line in unfolded.split(b"\r\n") if b"CN=" in line]
            assert cn and not [line for line in cn if b"^'" in line], cn
