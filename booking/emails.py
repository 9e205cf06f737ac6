"""Booking emails, delivered through the outbox (registered in ``BookingConfig.ready``).

* ``email.prospect`` — one email to the prospect per booking event, with an iCalendar invitation
  (REQUEST; CANCEL when cancelled) unless the lead host's calendar provider sends the invitation itself
  (``calendars.selectors.invitation_sent_by_provider``). Which invitation the prospect holds is recorded on
  the booking as the e-mails send it (``Booking.prospect_invitation``): a cancellation CANCELs Baton's
  invitation where that is the one the prospect holds, even if the lead's calendar invites by now (a
  calendar connected after the booking: it never had this meeting), and when a change hands the meeting to
  a lead whose calendar invites, the email CANCELs Baton's (the provider's has its own UID, and the old
  event stayed in the prospect's calendar beside the new one).
* ``email.host`` — one email per affected host (fan-out): REQUEST to current hosts ("Confirmed" to a host
  new in this change, "Updated" to the others), naming the other hosts ("With: …", and whom a change
  replaced: "(was: …)"), CANCEL to hosts who stopped hosting in this change (cancelled, or reassigned away:
  "No longer hosting: …"). A host released by a reschedule or a reassignment is told of the meeting
  as they held it (``previous``: its time and its lead then), with themselves as the CANCEL's only attendee
  and no STATUS (RFC 5546 §3.2.5: a CANCEL names the attendees it removes; the meeting goes on). A
  cancellation's reason goes to the hosts. A co-host whose copy is Baton's e-mail gets the video link the
  lead's calendar makes for the meeting: a new booking's e-mail (or one of a change of lead) waits for it
  (``email_bodies.with_link``) while the lead's calendar write may still make one, but not on its outbox
  row's last allowed attempt (``outbox_waits.may_wait``). Texts and invitations: ``booking.email_bodies``.
  Hosts whose calendar Baton writes into get the email without the .ics part (the event is already in their
  calendar). Which copy a host holds is recorded on their host row as the e-mails send it
  (``BookingHost.invitation``), as for the prospect: a CANCEL carries the .ics where Baton's invitation is
  the one they hold, even if their calendar receives bookings by now (connected after the booking: the
  write-back never had this meeting there), and a change that finds their calendar receiving bookings
  CANCELs Baton's invitation (the write-back's event is their copy from then on).

Payloads are snapshots taken in the booking's transaction, with their SEQUENCE. A REQUEST of an older state
(a retry delivered after a later change's e-mail) is not sent at all (``_superseded``): the later change's
e-mail to the same person told the current state (or its CANCEL), and the late one would tell them the
superseded time or hosts last, or add a cancelled meeting back to a calendar the CANCEL reached first; nor
is a CANCEL of an older state to a host who hosts the meeting again (the later REQUEST told them they do).
Such a message counts as handled (delivered, with "not sent: superseded" as its result). (The prospect's
CANCEL comes only with a cancellation, after which a booking changes no more.) The prospect's invitation is
organized by the lead host, the hosts' copies by Baton's sending mailbox (``email_bodies.invitation``).
"""

from __future__ import annotations

from email.utils import formataddr

from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from booking import ics
from booking.email_bodies import (
    LINK_WAIT,
    VERB,
    awaits_link,
    co_hosts_before,
    host_lines,
    host_verb,
    with_link,
)
from booking.email_bodies import invitation as _ics
from booking.email_bodies import where as _where
from booking.email_times import moved_from, was_lines
from booking.email_times import when as _when
from booking.models import Booking, BookingHost
from booking.outbox import register_handler, shared
from booking.presenters import answer_rows


def _join_url(booking: Booking, context: dict) -> str:
    """The video link of the lead's calendar event (``calendars.selectors.booking_join_url``) where the
    meeting is a video call without a link of its own, as the write-back gives it to co-hosts' events: a
    co-host or prospect whose invitation is Baton's e-mail gets it there. None for a new booking (its events
    are written after its commit; nor is it a query under its locks), nor where this change gives the
    meeting another lead: the former lead's event, and its link, are about to be cancelled, and the new
    lead's is not written yet. Co-hosts' e-mails read it as they are sent (``email_bodies.with_link``)."""
    from calendars.selectors import booking_join_url  # calendars imports booking

    meeting = booking.meeting_type
    hosts = context.get("hosts") or []
    before = (context.get("previous") or {}).get("lead")
    if (
        booking._state.adding
        or not hosts
        or meeting.location_kind != meeting.LocationKind.VIDEO
        or meeting.location_detail
        or (before is not None and before.get("email") != hosts[0].get("email"))
    ):
        return ""
    return booking_join_url(booking.pk, rep_id=hosts[0]["rep_id"])


def snapshot(booking: Booking, context: dict) -> dict:
    """The booking as its e-mails tell it; made once per event for all its fan-outs (``outbox.shared``:
    the same booking and context objects, in one ``outbox.messages`` call)."""
    return shared(("email.snapshot", id(booking), id(context)), lambda: _snapshot(booking, context))


def _snapshot(booking: Booking, context: dict) -> dict:
    meeting = booking.meeting_type
    location = {"kind": meeting.get_location_kind_display(), "detail": meeting.location_detail}
    join_url = _join_url(booking, context)
    return {
        "uid": booking.ical_uid,
        "title": meeting.title,
        "start": booking.start.isoformat(),
        "end": booking.end.isoformat(),
        "status": booking.status,
        "prospect": {
            "name": booking.prospect_name,
            "email": booking.prospect_email,
            "timezone": booking.prospect_timezone,
        },
        "hosts": context.get("hosts", []),
        "location": {**location, "join_url": join_url} if join_url else location,
        "answers": answer_rows(meeting.questions, booking.answers),  # [label, answer] pairs
        "note": booking.note,
        "reason": context.get("reason", ""),
    }


def prospect_fanout(booking: Booking, context: dict) -> list[dict]:
    cancelled = booking.status == Booking.Status.CANCELLED
    snap = snapshot(booking, context)
    before = context.get("previous") or {}
    message = {"method": ics.CANCEL if cancelled else ics.REQUEST, "booking": snap}
    message.update(moved_from(snap, before))  # the time the change moved it from, if it did ("Was: …")
    if not cancelled and before.get("lead"):
        # the meeting as the prospect may hold it in Baton's invitation: should the new lead's calendar send
        # its own (another UID), that one is withdrawn (``send_prospect_email``), or it stays beside it
        held = {"start": before["start"], "end": before["end"], "hosts": [before["lead"]]}
        message["withdraw"] = {**snap, **held}
        # for a booking whose e-mails have not recorded it yet (``Booking.prospect_invitation``): whether
        # the lead's calendar did not invite at the change, so Baton's e-mail must have
        message["baton_invited"] = bool(before.get("baton_invited"))
    return [message]


def previous(booking: Booking, hosts: list[BookingHost]) -> dict:
    """The meeting as the hosts held it before a change: its time and the lead host (the prospect's
    invitation's ORGANIZER then), for the CANCEL a released host gets (``host_fanout``) and the prospect's
    withdrawal of Baton's invitation (``prospect_fanout``), with whether the lead's calendar invites now (a
    guess at the invitation the prospect holds, for bookings whose e-mails have not recorded it)."""
    from calendars.selectors import invitation_sent_by_provider  # calendars imports booking

    lead = hosts[0] if hosts else None
    return {
        "start": booking.start.isoformat(),
        "end": booking.end.isoformat(),
        "lead": None if lead is None else {"name": lead.rep.name, "email": lead.rep.email},
        "hosts": [{"rep_id": h.rep_id, "name": h.rep.name} for h in hosts],  # for "With: … (was: …)"
        "baton_invited": lead is not None and not invitation_sent_by_provider(lead.rep_id),
    }


def _as_held(snap: dict, before: dict, host: dict) -> dict:
    """The meeting as ``host`` held it before a change (``previous``): its time, its lead then (named by
    the organizer of their copy), and themselves, the attendee a CANCEL removes."""
    lead = before.get("lead") or host
    return {
        **snap,
        "start": before.get("start", snap["start"]),
        "end": before.get("end", snap["end"]),
        "hosts": [lead] + ([host] if host["email"] != lead["email"] else []),
    }


def host_fanout(booking: Booking, context: dict) -> list[dict]:
    snap = snapshot(booking, context)
    cancelled = booking.status == Booking.Status.CANCELLED
    added = set(context.get("added", ()))
    before = context.get("previous") or {}
    hosts = context.get("hosts", [])
    link_by = (timezone.now() + LINK_WAIT).isoformat() if awaits_link(booking, snap) else ""
    out = []
    for h in hosts:
        message = {"method": ics.CANCEL if cancelled else ics.REQUEST, "host": h, "booking": snap}
        message.update(moved_from(snap, before))  # told unless the meeting is new to them (``was_lines``)
        if not cancelled:
            message.update(co_hosts_before(snap, before, h))  # "With: … (was: …)"
        if link_by and not cancelled and h["rep_id"] != hosts[0]["rep_id"]:
            message["link_by"] = link_by  # a co-host: the lead's calendar may be making the link
        if h["rep_id"] in added:
            message["new"] = True
        if not cancelled and before.get("lead"):
            # Baton's invitation as the host may hold it: withdrawn should their calendar receive bookings
            # by now (``send_host_email``), or it stays beside the write-back's event
            message["withdraw"] = _as_held(snap, before, h)
        out.append(message)
    for h in context.get("released", []):
        out.append({"method": ics.CANCEL, "host": h, "booking": _as_held(snap, before, h)})
    return out


def _person(person: dict) -> str:
    """``Name <address>`` for a header (one line, quoted as RFC 5322 asks; the domain in ASCII)."""
    address = ics.ascii_address(person["email"])
    try:
        return formataddr((" ".join(person["name"].split()), address))
    except UnicodeError:  # a non-ASCII local part: the address alone, which Django encodes
        return address


def _send(
    *, to: str, subject: str, body: str, invite: bytes | None, method: str, reply_to: dict | None
) -> None:
    # one line: a line break in a name or title (a config file's, a booking's from before names were
    # checked) made Django refuse the header, and the message was retried until it died
    subject = " ".join(subject.split())
    # sent from the configured mailbox; a reply reaches the other side of the meeting (the prospect's goes
    # to the lead host, a host's to the prospect)
    replies = [_person(reply_to)] if reply_to else []
    message = EmailMultiAlternatives(subject=subject, body=body, to=[to], reply_to=replies)
    if invite is not None:
        message.attach_alternative(invite.decode(), f"text/calendar; method={method}")
        message.attach("invite.ics", invite, f"application/ics; method={method}")
    message.send()


def _held_invitation(booking_id: int) -> tuple[str, int | None]:
    """``Booking.prospect_invitation`` and ``sequence`` of the booking ("", None when it was deleted)."""
    found = Booking.objects.filter(pk=booking_id).values_list("prospect_invitation", "sequence").first()
    if not found:
        return Booking.Invitation.NONE, None
    return found[0] or Booking.Invitation.NONE, found[1]


def _stale(payload: dict, sequence: int | None) -> bool:
    """Whether the message tells an older state of the booking than its current ``sequence`` (a retry
    delivered after a later change was made)."""
    return sequence is not None and payload.get("sequence", sequence) < sequence


def _superseded(payload: dict, sequence: int | None) -> bool:
    """A REQUEST of an older state: every change e-mails everyone it concerns with its own SEQUENCE, so
    the later change's e-mail (sent, or still to come) tells this person the current state, or CANCELs
    the meeting for them. Sent after it, this one would tell them a superseded time or host last, with
    a REQUEST that a calendar ignoring SEQUENCE takes, and one the CANCEL reached first (it had no event to
    delete) adds back. Such an e-mail is not sent."""
    return payload["method"] == ics.REQUEST and _stale(payload, sequence)


def _hosts_now(booking_id: int, rep_id: int) -> bool:
    """Whether the rep hosts the booking now (an active host row of a booking not cancelled)."""
    rows = BookingHost.objects.filter(booking_id=booking_id, rep_id=rep_id, active=True)
    return rows.exclude(booking__status=Booking.Status.CANCELLED).exists()


def _host_invitation(booking_id: int, rep_id: int) -> tuple[str, int | None]:
    """``BookingHost.invitation`` of the rep's host row ("" when there is none) and the booking's
    ``sequence`` (None when it was deleted)."""
    sequence = Booking.objects.filter(pk=booking_id).values_list("sequence", flat=True).first()
    held = (
        BookingHost.objects.filter(booking_id=booking_id, rep_id=rep_id)
        .values_list("invitation", flat=True)
        .first()
    )
    return held or BookingHost.Invitation.NONE, sequence


def send_prospect_email(payload: dict) -> str:
    from calendars.selectors import invitation_sent_by_provider

    snap, method = payload["booking"], payload["method"]
    prospect = snap["prospect"]
    verb = VERB[payload["event"]]
    hosts = snap["hosts"]
    lines = [f"Hello {prospect['name']},", "", f"{verb}: {snap['title']}", _when(snap, prospect["timezone"])]
    lines += was_lines(payload, prospect["timezone"])
    if hosts and method == ics.REQUEST:
        lines.append("With: " + ", ".join(h["name"] for h in hosts))
        lines.append(f"Where: {_where(snap)}")
    if payload.get("manage_url") and method == ics.REQUEST:
        lines += ["", f"Reschedule or cancel: {payload['manage_url']}"]
    stored, sequence = _held_invitation(payload["booking_id"])
    if _superseded(payload, sequence):
        return f"not sent to {prospect['email']}: superseded by a later change"
    lead_invites = bool(hosts) and invitation_sent_by_provider(hosts[0]["rep_id"])
    held = stored
    if not stored and payload.get("withdraw") and payload.get("baton_invited", True):
        held = Booking.Invitation.BATON  # not recorded (an older booking): the change's guess
    # a CANCEL of an older state, delivered late, does not change the record
    stale = _stale(payload, sequence)
    if method == ics.CANCEL:  # of the invitation the prospect holds
        baton = held == Booking.Invitation.BATON or (held == Booking.Invitation.NONE and not lead_invites)
        now_held = held
    else:  # the lead's calendar invites, or this e-mail does
        baton = not lead_invites
        now_held = Booking.Invitation.PROVIDER if lead_invites else Booking.Invitation.BATON
    invite = _ics(payload, method) if baton else None
    note = ", no .ics: provider invites" if invite is None else ""
    if method == ics.REQUEST and lead_invites and held == Booking.Invitation.BATON:
        # Baton's invitation goes (its UID, a higher SEQUENCE); the lead's calendar invites now
        method, note = ics.CANCEL, ", CANCEL of Baton's invitation: provider invites"
        invite = _ics({**payload, "booking": payload.get("withdraw") or snap}, method)
        lines += ["", f"The invitation for the new time comes from {hosts[0]['name']}'s calendar."]
    _send(
        to=prospect["email"],
        subject=f"{verb}: {snap['title']}",
        body="\n".join(lines),
        invite=invite,
        method=method,
        reply_to=hosts[0] if hosts else None,
    )
    if now_held != stored and not stale:
        Booking.objects.filter(pk=payload["booking_id"]).update(prospect_invitation=now_held)
    return f"sent to {prospect['email']} ({method}{note})"


def send_host_email(payload: dict) -> str:
    from calendars.selectors import invitation_sent_by_provider

    snap, method, host = payload["booking"], payload["method"], payload["host"]
    stored, sequence = _host_invitation(payload["booking_id"], host["rep_id"])
    # a late REQUEST, or a late CANCEL to a host of the meeting now (given it back since: a REQUEST told them)
    stale_cancel = method == ics.CANCEL and _stale(payload, sequence)
    if _superseded(payload, sequence) or (stale_cancel and _hosts_now(payload["booking_id"], host["rep_id"])):
        return f"not sent to {host['email']}: superseded by a later change"
    prospect = snap["prospect"]
    provider = invitation_sent_by_provider(host["rep_id"])
    if method == ics.REQUEST:  # the lead's video link, if this e-mail is to carry it (it may wait for it)
        payload = with_link(payload, baton=not provider)
        snap = payload["booking"]
    verb = host_verb(payload, method)
    lines = host_lines(payload, method, verb)
    Held = BookingHost.Invitation
    if method == ics.CANCEL:  # of the copy the host holds; they hold none after it
        baton = stored == Held.BATON or (stored == Held.NONE and not provider)
        now_held = Held.NONE
    else:  # their calendar receives the write-back's event, or this e-mail is the invitation
        baton = not provider
        now_held = Held.PROVIDER if provider else Held.BATON
    invite = _ics(payload, method) if baton else None
    note = ""
    if method == ics.REQUEST and provider and stored == Held.BATON:
        # their calendar receives bookings by now (connected since): Baton's invitation goes (its UID, a
        # higher SEQUENCE), the write-back's event is their copy of the meeting from now on
        method, note = ics.CANCEL, ", CANCEL of Baton's invitation: their calendar has the event"
        invite = _ics({**payload, "booking": payload.get("withdraw") or snap}, method)
        lines += ["", "The meeting is now in your connected calendar; the earlier invitation is withdrawn."]
    _send(
        to=host["email"],
        subject=f"{verb}: {snap['title']} with {prospect['name']}",
        body="\n".join(lines),
        invite=invite,
        method=method,
        reply_to=prospect,
    )
    if now_held != stored and not _stale(payload, sequence):
        BookingHost.objects.filter(booking_id=payload["booking_id"], rep_id=host["rep_id"]).update(
            invitation=now_held
        )
    return f"sent to {host['email']} ({method}{note})"


EMAIL_EVENTS = ("booking.confirmed", "booking.rescheduled", "booking.cancelled")


def register() -> None:
    # the three events that change a meeting the attendees hold (``booking.outcome_recorded`` sends nothing)
    for event in EMAIL_EVENTS:
        register_handler(event, send_prospect_email, name="email.prospect", fanout=prospect_fanout)
        register_handler(event, send_host_email, name="email.host", fanout=host_fanout)
