"""Booking e-mails and their iCalendar parts as mail and calendar clients (Gmail, Outlook/Exchange, Apple
Calendar) consume them: iTIP (RFC 5546) semantics of REQUEST/CANCEL across changes, iMIP (RFC 6047)
structure, and the manage page's .ics download."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from booking import outbox
from booking.services import booking_create, booking_reassign
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"


def invitations(message) -> list[Calendar]:
    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def method_and_sequence(message) -> list[tuple[str, int]]:
    return [(str(c["METHOD"]), int(c.walk("VEVENT")[0]["SEQUENCE"])) for c in invitations(message)]


def addresses(event, name: str) -> list[str]:
    value = event.get(name)
    values = value if isinstance(value, list) else ([value] if value is not None else [])
    return [str(v).lower() for v in values]


def create(meeting_type, capture, **kw) -> dict:
    with capture(execute=True):
        return booking_create(
            meeting_type=meeting_type,
            start=START,
            name=kw.pop("name", "Pat Prospect"),
            email=kw.pop("email", PROSPECT),
            timezone="Europe/Berlin",
            **kw,
        ).body


def test_a_late_cancel_does_not_reach_a_host_who_hosts_the_meeting_again(
    mailoutbox, django_capture_on_commit_callbacks
):
    """An admin hands Pat's meeting from Ana to Bo (SEQUENCE 1: Ana's CANCEL, "You no longer host this
    meeting"), Ana's mail server defers it, and a minute later the admin hands the meeting back to Ana
    (SEQUENCE 2: "Confirmed" REQUEST to Ana). The outbox then retries the SEQUENCE 1 CANCEL: Ana's last
    e-mail says she no longer hosts a meeting she does host, and a client that does not compare SEQUENCE
    (or a person reading the inbox) deletes it. A late REQUEST of an older state is already suppressed
    (``_superseded``); a late CANCEL to someone the current state has as a host is not."""
    ana, bo = make_rep("Ana"), make_rep("Bo")
    pool = make_pool("round_robin", [ana, bo])
    meeting_type = make_meeting_type(pool, slug="intro")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):  # SEQUENCE 1's e-mails wait for their retry
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=bo).pk,
            code="other",
            reason="rebalance",
        )
    with django_capture_on_commit_callbacks(execute=True):  # SEQUENCE 2 goes out at once
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=ana).pk,
            code="other",
            reason="rebalance",
        )
    outbox.sweep(now=NOW + dt.timedelta(minutes=10))  # the deferred SEQUENCE 1 messages
    to_ana = [m for m in mailoutbox if m.to == [ana.email]]
    assert method_and_sequence(to_ana[1]) == [("REQUEST", 2)]
    late = [(m.subject, m.body, method_and_sequence(m)) for m in to_ana[2:]]
    assert not late, f"after her SEQUENCE 2 invitation Ana was sent {late}"


def test_the_lead_hosts_invitation_names_them_as_an_attendee_not_as_its_organizer(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Ana has no calendar connected (or only an ICS feed): Baton's e-mail is her only invitation
    (``send_host_email``). Its REQUEST names Ana as the ORGANIZER and lists only Pat among the ATTENDEEs,
    i.e. it tells Ana's client "this is your own meeting", a REQUEST to its organizer. Outlook/Exchange
    answers "As the meeting organizer, you do not need to respond" and puts nothing in her calendar, and a
    client that files invitations by ATTENDEE (Google's) finds her in none: the meeting she must attend is
    not in her calendar. A host's REQUEST must invite its recipient (an ATTENDEE), sent by an organizer
    that is not themselves (e.g. Baton's mailbox, as the e-mail's From)."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    create(meeting_type, django_capture_on_commit_callbacks)
    (to_ana,) = [m for m in mailoutbox if m.to == [ana.email]]
    (cal,) = invitations(to_ana)
    event = cal.walk("VEVENT")[0]
    assert str(cal["METHOD"]) == "REQUEST"
    assert f"mailto:{ana.email}" in addresses(event, "ATTENDEE"), (
        f"ATTENDEE {addresses(event, 'ATTENDEE')}, ORGANIZER {addresses(event, 'ORGANIZER')}"
    )
    assert addresses(event, "ORGANIZER") != [f"mailto:{ana.email}"]


@pytest.mark.postgres
def test_the_cancel_of_a_group_meeting_comes_from_the_organizer_of_its_invitation(
    mailoutbox, django_capture_on_commit_callbacks
):
    """PostgreSQL created with a language collation (en_US.UTF-8: the official Docker image's default;
    emulated here on the role column with ICU's en-US). A group pool with roles ``SE`` (Sol) and ``ae``
    (Ann): the routing core orders roles with Python's ``sorted`` ("SE" < "ae"), so the confirmation's
    REQUEST names Sol as ORGANIZER; the cancellation reads the hosts ``ORDER BY role`` in the database
    ("ae" < "SE" in en_US) and its CANCEL names Ann. Google, Outlook and Apple ignore a CANCEL from someone
    who is not the event's organizer: the cancelled meeting stays in Pat's calendar (and the lead whose
    calendar invites the prospect differs between the e-mails and the write-back the same way)."""
    from django.db import connection

    from booking.services import booking_cancel

    with connection.cursor() as cursor:
        cursor.execute(
            'ALTER TABLE booking_bookinghost ALTER COLUMN role TYPE varchar(32) COLLATE "en-US-x-icu"'
        )
    sol, ann = make_rep("Sol"), make_rep("Ann")
    meeting_type = make_meeting_type(make_pool("group", [sol, ann], roles=["SE", "ae"]), slug="intro")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(token=created["manage_token"])
    to_pat = [m for m in mailoutbox if m.to == [PROSPECT]]
    organizers = [
        (str(c["METHOD"]), addresses(c.walk("VEVENT")[0], "ORGANIZER"))
        for m in to_pat
        for c in invitations(m)
    ]
    assert [method for method, _ in organizers] == ["REQUEST", "CANCEL"]
    assert organizers[0][1] == organizers[1][1], organizers


def test_a_co_hosts_copy_keeps_its_organizer_when_the_lead_seat_changes_hands(
    mailoutbox, django_capture_on_commit_callbacks, settings
):
    """Added with the fix: every host copy is organized by Baton's mailbox (the e-mails' From), so handing
    the lead's seat to another rep changes nothing a co-host's client checks (a REQUEST from another
    organizer than their copy's is ignored); the prospect's invitation keeps the lead as its organizer (their
    replies reach the rep), and the released lead's CANCEL names the same organizer as their copy."""
    settings.DEFAULT_FROM_EMAIL = "Baton <meetings@example.com>"
    ann, al, sol = make_rep("Ann"), make_rep("Al"), make_rep("Sol")
    pool = make_pool("group", [ann, al, sol], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="intro")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    lead = created["hosts"][0]["email"]
    other = al if lead == ann.email else ann
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=other).pk,
            code="other",
            reason="rebalance",
        )
    to_hosts = [m for m in mailoutbox if m.to != [PROSPECT]]
    assert len(to_hosts) == 5  # Ann or Al and Sol, then the released lead, the new lead and Sol
    for message in to_hosts:
        (cal,) = invitations(message)
        event = cal.walk("VEVENT")[0]
        assert addresses(event, "ORGANIZER") == ["mailto:meetings@example.com"], message.to
        assert f"mailto:{message.to[0]}" in addresses(event, "ATTENDEE")
    prospect = [invitations(m)[0].walk("VEVENT")[0] for m in mailoutbox if m.to == [PROSPECT]]
    assert [addresses(e, "ORGANIZER") for e in prospect] == [[f"mailto:{lead}"], [f"mailto:{other.email}"]]
