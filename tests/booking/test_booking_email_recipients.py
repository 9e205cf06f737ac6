"""Booking e-mails and their iCalendar invitations as the people who get them read them: the prospect's
self-service link after every change, where replies go, what a host is told about the meeting, and the
calendar addresses an internationalised e-mail address ends up with (found by a hunting helper; each test
failed before its fix)."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes

import pytest
from icalendar import Calendar

from booking.models import Booking
from booking.services import booking_cancel, booking_create, booking_reassign, booking_reschedule
from routing.models import PoolMember
from tests.booking.booking_factories import START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"


def invitations(message) -> list[Calendar]:
    """Every calendar part of ``message``, read back from the bytes a mail server would get."""
    raw = message_from_bytes(message.message().as_bytes(linesep="\r\n"))
    found = []
    for part in raw.walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            found.append(Calendar.from_ical(part.get_payload(decode=True)))
    return found


def addresses(event, name: str) -> list[str]:
    value = event.get(name)
    values = value if isinstance(value, list) else ([value] if value is not None else [])
    return [str(v) for v in values]


def book(meeting_type, capture, *, email: str = PROSPECT, start=START, tz: str = "Europe/Berlin") -> dict:
    with capture(execute=True):
        return booking_create(
            meeting_type=meeting_type, start=start, name="Pat Prospect", email=email, timezone=tz
        ).body


def test_the_prospects_email_after_a_reassignment_still_has_the_manage_link(
    mailoutbox, django_capture_on_commit_callbacks, client
):
    """An admin hands Pat's meeting from Ana to Bo. Pat gets "Updated: Intro call" naming Bo, with
    "Reschedule or cancel: <link>" as the confirmation and a reschedule's e-mail have: the latest e-mail is
    the one a prospect keeps and searches for. The first token is known only by its hash, so the
    reassignment issues another (``ManageLink``); both links open the meeting, and the new one cancels it."""
    ana, bo = make_rep("Ana"), make_rep("Bo")
    pool = make_pool("round_robin", [ana, bo])
    meeting_type = make_meeting_type(pool, slug="intro")
    created = book(meeting_type, django_capture_on_commit_callbacks)
    link = created["manage_url"]
    host = Booking.objects.get(pk=created["id"]).hosts.get(active=True).rep
    other = bo if host == ana else ana
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=other).pk,
            code="other",
            reason="rebalance",
        )
    (to_pat,) = [m for m in mailoutbox[sent:] if m.to == [PROSPECT]]
    assert to_pat.subject.startswith("Updated: ")
    assert f"With: {other.name}" in to_pat.body
    (new_link,) = re.findall(r"Reschedule or cancel: (\S+)", to_pat.body)
    assert new_link != link
    for url in (link, new_link):
        assert client.get(url).status_code == 200
    token = new_link.rstrip("/").rsplit("/", 1)[1]
    booking_cancel(token=token)
    assert Booking.objects.get(pk=created["id"]).status == Booking.Status.CANCELLED


def test_replies_to_booking_emails_reach_the_other_side_of_the_meeting(
    mailoutbox, django_capture_on_commit_callbacks, settings
):
    """Booking e-mails go out from ``DEFAULT_FROM_EMAIL``, and a reply reaches the other side of the meeting:
    a prospect answering their confirmation ("Can my CTO join?") writes to the lead host, a rep answering
    the "Confirmed: … with Pat" notice writes to Pat, not to a system mailbox where it is lost to the
    sale."""
    settings.DEFAULT_FROM_EMAIL = "Baton <meetings@example.com>"
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    book(meeting_type, django_capture_on_commit_callbacks)
    (to_pat,) = [m for m in mailoutbox if m.to == [PROSPECT]]
    (to_ana,) = [m for m in mailoutbox if m.to == [ana.email]]
    assert to_pat.from_email == to_ana.from_email == "Baton <meetings@example.com>"
    assert any(ana.email in r for r in to_pat.reply_to), f"prospect's Reply-To: {to_pat.reply_to}"
    assert any(PROSPECT in r for r in to_ana.reply_to), f"host's Reply-To: {to_ana.reply_to}"


def test_the_hosts_email_says_where_the_meeting_is(mailoutbox, django_capture_on_commit_callbacks):
    """An in-person meeting at "Acme HQ, Friedrichstraße 1, Berlin": Pat's confirmation says "Where: Acme HQ,
    …", and so does Ana's "Confirmed: Intro call with Pat", agreeing with the LOCATION of the invitation it
    attaches (a host whose calendar Baton writes into gets no attachment, so the text is all they have)."""
    ana = make_rep("Ana")
    place = "Acme HQ, Friedrichstraße 1, Berlin"
    meeting_type = make_meeting_type(
        make_pool("round_robin", [ana]), slug="intro", location_kind="in_person", location_detail=place
    )
    book(meeting_type, django_capture_on_commit_callbacks)
    (to_pat,) = [m for m in mailoutbox if m.to == [PROSPECT]]
    (to_ana,) = [m for m in mailoutbox if m.to == [ana.email]]
    assert f"Where: {place}" in to_pat.body
    (cal, _) = invitations(to_ana)  # the alternative and the attachment
    assert str(cal.walk("VEVENT")[0]["LOCATION"]) == place
    assert place in to_ana.body, to_ana.body


def test_an_internationalised_address_is_a_valid_mailto_in_the_invitation(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books as ``pat@bücher.example``; the e-mail goes to ``pat@xn--bcher-kva.example`` (Django encodes
    the domain), and the invitation's ATTENDEE is that same ASCII form: a CAL-ADDRESS is a URI (RFC 5545,
    RFC 6068 §2), and a calendar client matches ATTENDEE against the address the invitation arrived at to
    decide "this is you" and show Accept/Decline."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    book(meeting_type, django_capture_on_commit_callbacks, email="pat@bücher.example")
    assert len(mailoutbox) == 2
    sent_to = "pat@xn--bcher-kva.example"
    raw_to = message_from_bytes(next(m for m in mailoutbox if m.to != [ana.email]).message().as_bytes())["To"]
    assert raw_to == sent_to
    for message in mailoutbox:
        for cal in invitations(message):
            event = cal.walk("VEVENT")[0]
            attendees = addresses(event, "ATTENDEE")
            assert all(a.isascii() for a in attendees), attendees
            assert f"mailto:{sent_to}" in [a.lower() for a in attendees], attendees


def test_each_recipient_reads_the_time_in_their_own_zone_across_the_weeks_the_dst_rules_differ(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Tuesday 10 March 2026: New York is already on summer time (EDT, since 8 March), Berlin not yet
    (CET, until 29 March). A meeting at 14:00 UTC is 10:00 for Nia in New York and 15:00 for Pat in Berlin;
    each e-mail names its zone, and the invitation carries the instant in UTC. A confirmation and its
    reschedule (to 15:00 UTC) both say so, and both carry Pat's manage link."""
    nia = make_rep("Nia", tz="America/New_York")
    meeting_type = make_meeting_type(make_pool("round_robin", [nia]), slug="intro")
    start = dt.datetime(2026, 3, 10, 14, tzinfo=dt.UTC)
    created = book(meeting_type, django_capture_on_commit_callbacks, start=start)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reschedule(token=created["manage_token"], start=start + dt.timedelta(hours=1))
    to_pat = [m for m in mailoutbox if m.to == [PROSPECT]]
    to_nia = [m for m in mailoutbox if m.to == [nia.email]]
    assert [m.subject for m in to_pat] == ["Confirmed: Intro call", "Updated: Intro call"]
    assert "Tuesday 10 March 2026, 15:00–15:30 (Europe/Berlin)" in to_pat[0].body
    assert "Tuesday 10 March 2026, 16:00–16:30 (Europe/Berlin)" in to_pat[1].body
    assert "Tuesday 10 March 2026, 10:00–10:30 (America/New_York)" in to_nia[0].body
    assert "Tuesday 10 March 2026, 11:00–11:30 (America/New_York)" in to_nia[1].body
    assert all(f"Reschedule or cancel: {created['manage_url']}" in m.body for m in to_pat)
    for message, hour in zip(to_pat + to_nia, (14, 15, 14, 15), strict=True):
        for cal in invitations(message):
            event = cal.walk("VEVENT")[0]
            assert event.decoded("DTSTART") == dt.datetime(2026, 3, 10, hour, tzinfo=dt.UTC)
