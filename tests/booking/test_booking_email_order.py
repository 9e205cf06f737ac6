"""Booking e-mails as a calendar client and a demanding prospect see them when the outbox delivers out of
order, twice, or partly: a cancellation delivered before the confirmation, a host reassigned away whose
confirmation retry comes after their CANCEL, names and addresses that are awkward in headers."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from icalendar import Calendar

from booking import outbox
from booking.models import Booking, OutboxMessage
from booking.services import booking_cancel, booking_create, booking_reassign, booking_reschedule
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"


def invitations(message) -> list[Calendar]:
    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def method_and_sequence(message) -> list[tuple[str, int]]:
    return [(str(c["METHOD"]), int(c.walk("VEVENT")[0]["SEQUENCE"])) for c in invitations(message)]


def rows(event: str, handler: str, **payload) -> list[OutboxMessage]:
    found = OutboxMessage.objects.filter(event=event, handler=handler).order_by("pk")
    return [r for r in found if all(r.payload.get(k) == v for k, v in payload.items())]


def at(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def create(meeting_type, capture, **kw) -> dict:
    with capture(execute=False):  # nothing delivered: the test delivers rows in the order it wants
        return booking_create(
            meeting_type=meeting_type,
            start=START,
            name=kw.pop("name", "Pat"),
            email=kw.pop("email", PROSPECT),
            timezone="Europe/Berlin",
            **kw,
        ).body


def test_a_cancellation_delivered_before_the_confirmation_leaves_no_meeting_in_the_prospects_calendar(
    mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    """Pat books with Ana; the confirmation e-mail's first attempt fails (SMTP 451) and waits for its retry.
    Pat cancels a minute later and the cancellation's e-mail goes out at once (CANCEL, SEQUENCE 1) — for an
    event Pat's calendar never had, so the client has nothing to delete. Then the sweep retries the
    confirmation: a "Confirmed" e-mail with METHOD:REQUEST, SEQUENCE 0 would make Google/Outlook/Apple add
    the event (they hold no later SEQUENCE of the UID), after Pat read "Cancelled". A superseded confirmation
    of a cancelled booking is not sent."""
    from django.core.mail import EmailMultiAlternatives

    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    real_send, refused = EmailMultiAlternatives.send, []

    def send(self, fail_silently=False):
        if self.to == [PROSPECT] and not refused:
            refused.append(self.subject)
            raise OSError("451 try again later")
        return real_send(self, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", send)
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="Europe/Berlin"
        ).body
    assert refused == ["Confirmed: Intro call"]
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(token=created["manage_token"], now=at(1))
    assert outbox.sweep(now=at(5)) == {"delivered": 1}  # the confirmation's retry

    to_pat = [m for m in mailoutbox if m.to == [PROSPECT]]
    assert method_and_sequence(to_pat[0]) == [("CANCEL", 1)]
    late = [method_and_sequence(m) for m in to_pat[1:]]
    assert all(("REQUEST", 0) not in sent for sent in late), (
        f"after the CANCEL, Pat was sent {[m.subject for m in to_pat[1:]]} with {late}: "
        "the cancelled meeting is added to Pat's calendar"
    )


def test_a_cancellation_delivered_before_the_confirmation_leaves_no_meeting_in_the_hosts_calendar(
    mailoutbox, django_capture_on_commit_callbacks
):
    """The same for the host: Ana's confirmation (REQUEST, SEQUENCE 0) is retried after her cancellation
    (CANCEL, SEQUENCE 1) was delivered: sent, it would give her calendar a meeting that no longer exists."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    (confirmation,) = rows("booking.confirmed", "email.host")
    with django_capture_on_commit_callbacks(execute=False):
        booking_cancel(token=created["manage_token"], now=at(1))
    (cancellation,) = rows("booking.cancelled", "email.host")

    assert outbox.deliver(message_id=cancellation.pk, now=at(2)) == "delivered"
    assert outbox.deliver(message_id=confirmation.pk, now=at(3)) in ("delivered", "skipped")

    to_ana = [m for m in mailoutbox if m.to == [ana.email]]
    assert method_and_sequence(to_ana[0]) == [("CANCEL", 1)]
    late = [method_and_sequence(m) for m in to_ana[1:]]
    assert all(("REQUEST", 0) not in sent for sent in late), (
        f"after the CANCEL, Ana was sent {[m.subject for m in to_ana[1:]]} with {late}"
    )


def test_a_host_reassigned_away_before_their_confirmation_arrives_does_not_get_the_meeting(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pat books with Ana; Ana's confirmation e-mail fails its first attempt. An admin reassigns the meeting
    to Bo: Ana's CANCEL (SEQUENCE 1) is delivered, then her confirmation's retry (REQUEST, SEQUENCE 0). Ana's
    calendar would show a meeting Bo hosts, and Ana would be told "Confirmed" last."""
    ana, bo = make_rep("Ana"), make_rep("Bo")
    pool = make_pool("round_robin", [ana, bo])
    meeting_type = make_meeting_type(pool, slug="intro")
    created = create(meeting_type, django_capture_on_commit_callbacks)
    assert [h["name"] for h in created["hosts"]] == ["Ana"]
    (confirmation,) = rows("booking.confirmed", "email.host")
    with django_capture_on_commit_callbacks(execute=False):
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=bo).pk,
            code="other",
            reason="Ana away",
            now=at(1),
        )
    for row in rows("booking.rescheduled", "email.host"):
        assert outbox.deliver(message_id=row.pk, now=at(2)) == "delivered"
    assert outbox.deliver(message_id=confirmation.pk, now=at(3)) in ("delivered", "skipped")

    to_ana = [m for m in mailoutbox if m.to == [ana.email]]
    assert method_and_sequence(to_ana[0]) == [("CANCEL", 1)]
    late = [method_and_sequence(m) for m in to_ana[1:]]
    assert all(("REQUEST", 0) not in sent for sent in late), (
        f"after her CANCEL, Ana was sent {[m.subject for m in to_ana[1:]]} with {late}"
    )


def test_one_event_uid_with_rising_sequence_across_reschedule_reassign_and_cancel(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pinning: every e-mail of a booking names one UID; SEQUENCE rises with each change; REQUEST until the
    cancellation, which CANCELs for the prospect and the current host; DTSTART/DTEND in UTC."""
    ana, bo = make_rep("Ana"), make_rep("Bo")
    pool = make_pool("round_robin", [ana, bo])
    meeting_type = make_meeting_type(pool, slug="intro")
    with django_capture_on_commit_callbacks(execute=True):
        created = booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="Europe/Berlin"
        ).body
    with django_capture_on_commit_callbacks(execute=True):
        booking_reschedule(token=created["manage_token"], start=START + dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(
            booking_id=created["id"],
            to_member_id=PoolMember.objects.get(pool=pool, rep=bo).pk,
            code="other",
            reason="rebalance",
        )
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(token=created["manage_token"])
    uid = Booking.objects.get(pk=created["id"]).ical_uid
    to_pat = [m for m in mailoutbox if m.to == [PROSPECT]]
    assert [method_and_sequence(m) for m in to_pat] == [
        [("REQUEST", 0)],
        [("REQUEST", 1)],
        [("REQUEST", 2)],
        [("CANCEL", 3)],
    ]
    for message in mailoutbox:
        for cal in invitations(message):
            event = cal.walk("VEVENT")[0]
            assert str(event["UID"]) == uid
            assert event["DTSTART"].dt.utcoffset() == dt.timedelta(0)
    to_bo = [method_and_sequence(m) for m in mailoutbox if m.to == [bo.email]]
    assert to_bo == [[("REQUEST", 2)], [("CANCEL", 3)]]
    to_ana = [method_and_sequence(m) for m in mailoutbox if m.to == [ana.email]]
    assert to_ana == [[("REQUEST", 0)], [("REQUEST", 1)], [("CANCEL", 2)]]
    assert OutboxMessage.objects.exclude(status="delivered").count() == 0
    assert outbox.sweep(now=at(600)) == {}  # nothing is sent twice


def test_unicode_long_name_and_plus_idn_address_render_as_valid_mail(
    mailoutbox, django_capture_on_commit_callbacks
):
    """Pinning: a long non-ASCII name (200 characters, a quote, commas) and a plus address at an IDN domain
    make well-formed messages: one-line decoded subject, punycode recipient, an iCalendar the parser reads."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    name = ('Zoë "ZZ" Ñúñez, Jr.; ' + "Ü" * 200)[:200]
    with django_capture_on_commit_callbacks(execute=True):
        booking_create(
            meeting_type=meeting_type,
            start=START,
            name=name,
            email="pat+demo@bücher.example",
            timezone="Europe/Berlin",
        )
    assert len(mailoutbox) == 2
    for message in mailoutbox:
        raw = message_from_bytes(message.message().as_bytes())
        subject = str(make_header(decode_header(raw["Subject"])))
        assert "\n" not in subject and "\r" not in subject
        assert raw["To"] in (ana.email, "pat+demo@xn--bcher-kva.example")
        (cal,) = invitations(message)
        attendees = cal.walk("VEVENT")[0]["ATTENDEE"]
        attendees = attendees if isinstance(attendees, list) else [attendees]
        # Ana's copy names her among its attendees too (its organizer is Baton's mailbox, not Ana); the
        # quote as an apostrophe: a parameter value holds no DQUOTE, and RFC 6868's ^' shows as it is
        hosts = ["Ana"] if message.to == [ana.email] else []
        assert [str(a.params["CN"]) for a in attendees] == [*hosts, name.replace('"', "'")]
    host = next(m for m in mailoutbox if m.to == [ana.email])
    assert str(make_header(decode_header(message_from_bytes(host.message().as_bytes())["Subject"]))) == (
        f"Confirmed: Intro call with {name}"
    )


def test_a_retry_after_one_recipient_failed_sends_only_to_that_recipient_once(
    mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    """Pinning: a group meeting (AE Ann, SE Sol) and the prospect; Sol's mail server refuses the first
    attempt. The prospect and Ann get one e-mail each; the sweep's retry sends Sol's once, nobody else's."""
    from django.core.mail import EmailMultiAlternatives

    ann, sol = make_rep("Ann"), make_rep("Sol")
    meeting_type = make_meeting_type(make_pool("group", [ann, sol], roles=["ae", "se"]), slug="intro")
    real_send, refused = EmailMultiAlternatives.send, []

    def send(self, fail_silently=False):
        if self.to == [sol.email] and not refused:
            refused.append(self.to)
            raise OSError("451 try again later")
        return real_send(self, fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", send)
    with django_capture_on_commit_callbacks(execute=True):
        booking_create(
            meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="Europe/Berlin"
        )
    assert sorted(m.to[0] for m in mailoutbox) == sorted([PROSPECT, ann.email])
    (pending,) = OutboxMessage.objects.filter(status="pending")
    assert pending.handler == "email.host" and pending.payload["host"]["email"] == sol.email
    assert outbox.sweep(now=at(5)) == {"delivered": 1}
    assert outbox.sweep(now=at(60)) == {}
    assert sorted(m.to[0] for m in mailoutbox) == sorted([PROSPECT, ann.email, sol.email])
