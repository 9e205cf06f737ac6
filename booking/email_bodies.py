"""What the booking e-mails (booking/emails.py) say: a host's text, the iCalendar invitation of a
message's recipient (``invitation``), and the video link of a co-host's, read as it is sent (``with_link``).

A host's e-mail names the meeting, its time in the host's zone (and the time a reschedule moved it from:
``email_times``), the other hosts they host it with ("With: …", and whom they hosted it with before where
the change replaced them: ``co_hosts_before``), where it is, what the prospect answered and their note. A
host released from a meeting that goes on (a reassignment, or a reschedule that routes it again) is told
"No longer hosting: …", not "Cancelled: …": the meeting, and the lead, are not lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.utils import timezone

from booking import ics
from booking.email_times import was_lines, when
from booking.models import Booking
from booking.outbox_waits import Waiting, may_wait

LINK_WAIT = timedelta(minutes=15)  # how long a co-host's e-mail waits for the lead's video link at most
VERB = {"booking.confirmed": "Confirmed", "booking.rescheduled": "Updated", "booking.cancelled": "Cancelled"}
RELEASED = "No longer hosting"  # the subject of a host's release from a meeting that goes on
NOBODY = "nobody else"


def where(snap: dict) -> str:
    location = snap["location"]
    return location.get("join_url") or location["detail"] or location["kind"]


def mailbox() -> tuple[str, str]:
    """Name and address of Baton's sending mailbox (``DEFAULT_FROM_EMAIL``, ``Baton <me@example.com>``)."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return name or "Baton", address or settings.DEFAULT_FROM_EMAIL


def _uninvite(payload: dict, method: str) -> bool:
    """A host's CANCEL of a meeting that goes on (they no longer host it, or Baton's copy gives way to their
    calendar's): it removes them alone."""
    cancelled = payload["booking"].get("status") == Booking.Status.CANCELLED
    return payload.get("host") is not None and method == ics.CANCEL and not cancelled


def invitation(payload: dict, method: str) -> bytes:
    """The invitation of ``payload``'s recipient. The prospect's is organized by the lead host (their
    replies reach the rep), with the other hosts among its attendees. A host's copy (``payload["host"]``)
    is organized by Baton's mailbox, the e-mail's sender, in every message to every host: a REQUEST to its
    own organizer is no invitation (Outlook does not add it, clients that file invitations by ATTENDEE do
    not find it), and one organizer for all of them keeps a host's copy updatable whoever leads the meeting
    by then (clients ignore a REQUEST or CANCEL from another organizer than their copy's). The host is an
    attendee who accepted; a CANCEL of a meeting that goes on names only them, the attendee it removes, and
    no STATUS: it does not cancel the meeting (RFC 5546 §3.2.5)."""
    snap = payload["booking"]
    hosts = snap["hosts"] or []
    prospect = snap["prospect"]
    people = [(h["name"], h["email"]) for h in hosts]
    recipient = payload.get("host")
    name, address = mailbox()
    uninvite = _uninvite(payload, method)
    if recipient is None:  # the prospect's
        organizer = people[0] if people else (name, address)
        attendees = [(prospect["name"], prospect["email"])] + people[1:]
    else:
        organizer = (f"{hosts[0]['name']} (via {name})" if hosts else name, address)
        attendees = people + [(prospect["name"], prospect["email"])]
        if uninvite:
            attendees = [(recipient["name"], recipient["email"])]
    return ics.invitation(
        method=method,
        uid=snap["uid"],
        sequence=payload["sequence"],
        start=datetime.fromisoformat(snap["start"]),
        end=datetime.fromisoformat(snap["end"]),
        summary=f"{snap['title']}: {prospect['name']}",
        description=snap["note"] or snap["title"],
        location=where(snap),
        organizer=organizer,
        attendees=attendees,
        accepted=recipient["email"] if recipient else "",
        uninvite=uninvite,
    )


def awaits_link(booking: Booking, snap: dict) -> bool:
    """Whether the hosts' e-mails of this change may have to wait for the lead's calendar to make the
    meeting's video link (``with_link``): a video call without a link of its own, whose link the snapshot
    does not have (``emails._join_url``)."""
    meeting = booking.meeting_type
    video = meeting.location_kind == meeting.LocationKind.VIDEO and not meeting.location_detail
    return video and not snap["location"].get("join_url")


class LinkPending(Waiting):
    """The lead's calendar has not made the meeting's video link yet (``with_link``)."""


def with_link(payload: dict, *, baton: bool) -> dict:
    """``payload`` with the video link of the lead's calendar event, read now, for a co-host's e-mail of a
    change whose snapshot could not have it (``link_by``: a new booking, or one given another lead, whose
    lead's event is written after the commit). A co-host whose invitation is this e-mail (``baton``: their
    calendar does not receive bookings, so it is their only copy of the meeting) waits for the link while
    the lead's calendar may still make it, until ``link_by``: ``LinkPending`` (``outbox_waits.Waiting``),
    attempted again after the calendar write of the same batch, then with the back-off, as the write-back
    waits for a link being made. Nothing to wait for where the lead has no calendar that receives bookings
    (no link comes), or where the lead's event is written at this SEQUENCE without one (a calendar that
    makes none); after ``link_by`` (the calendar write keeps failing), or on the outbox row's last allowed
    attempt (``outbox_waits.may_wait``: waiting then would make the row dead, and the co-host would never
    hear of the meeting), the e-mail names the meeting type's location, as before."""
    from calendars.selectors import invitation_sent_by_provider, lead_event_link  # calendars imports booking

    snap = payload["booking"]
    if not payload.get("link_by") or snap["location"].get("join_url") or not snap["hosts"]:
        return payload
    lead = snap["hosts"][0]["rep_id"]
    link, written = lead_event_link(payload["booking_id"], rep_id=lead)
    if link:
        return {**payload, "booking": {**snap, "location": {**snap["location"], "join_url": link}}}
    if (
        baton
        and may_wait()
        and written < payload["sequence"]
        and timezone.now() < datetime.fromisoformat(payload["link_by"])
        and invitation_sent_by_provider(lead)
    ):
        raise LinkPending(f"waiting for the video link of rep {lead}'s calendar event")
    return payload


def co_hosts_before(snap: dict, before: dict, host: dict) -> dict:
    """For a host's fan-out payload: ``{"was_with": [names]}``, the other hosts ``host`` hosted the meeting
    with before the change (``before``: ``emails.previous``), where the change replaced them (an admin gave a
    co-host's seat to another rep; a reschedule routed it again); otherwise nothing."""
    if "hosts" not in before:  # a new booking, or a change queued before hosts were recorded
        return {}
    then = [h for h in before["hosts"] if h.get("rep_id") != host["rep_id"]]
    now = [h for h in snap["hosts"] or [] if h.get("rep_id") != host["rep_id"]]
    if sorted(h.get("rep_id") for h in then) == sorted(h.get("rep_id") for h in now):
        return {}
    return {"was_with": [h["name"] for h in then]}


def with_lines(payload: dict) -> list[str]:
    """``["With: Alma Ortiz (was: Ann Berg)"]``: the other hosts of the meeting a host's REQUEST tells, and
    whom they replace (``co_hosts_before``) unless the meeting is new to the host; ``[]`` for a meeting
    they host alone, as before."""
    host = payload["host"]
    others = [h["name"] for h in payload["booking"]["hosts"] or [] if h.get("rep_id") != host["rep_id"]]
    was = None if payload.get("new") else payload.get("was_with")
    if not others and was is None:
        return []
    line = "With: " + (", ".join(others) or NOBODY)
    return [line + (f" (was: {', '.join(was) or NOBODY})" if was is not None else "")]


def host_verb(payload: dict, method: str) -> str:
    """The subject's verb: "Confirmed" to a host the meeting is new to (reassigned or routed to them),
    "Updated" to the others; "Cancelled" for a cancellation, "No longer hosting" to a host released from a
    meeting that goes on."""
    if method == ics.CANCEL:
        return RELEASED if _uninvite(payload, method) else VERB["booking.cancelled"]
    return VERB["booking.confirmed"] if payload.get("new") else VERB[payload["event"]]


def host_lines(payload: dict, method: str, verb: str) -> list[str]:
    """The text of a host's e-mail (``payload``: ``emails.host_fanout``'s, its link read at sending)."""
    snap, host = payload["booking"], payload["host"]
    prospect = snap["prospect"]
    rep_zone = host.get("timezone") or "UTC"
    lines = [f"{verb}: {snap['title']} with {prospect['name']} <{prospect['email']}>", when(snap, rep_zone)]
    lines += was_lines(payload, rep_zone)
    if method == ics.REQUEST:
        lines += with_lines(payload)
        if snap["location"].get("join_url"):
            lines.append(f"Join: {snap['location']['join_url']}")
        else:  # where to go or what to dial, as the prospect's e-mail says
            lines.append(f"Where: {where(snap)}")
    if method == ics.CANCEL and snap.get("status") != Booking.Status.CANCELLED:
        lines.append("You no longer host this meeting.")
    elif method == ics.CANCEL and snap.get("reason"):
        lines.append(f"Reason: {snap['reason']}")
    answers = snap["answers"] or []  # a dict in messages queued before the labels (key: raw value)
    for label, value in answers.items() if isinstance(answers, dict) else answers:
        lines.append(f"{label}: {value}")
    if snap["note"]:
        lines += ["", snap["note"]]
    return lines
