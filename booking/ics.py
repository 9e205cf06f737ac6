"""iCalendar (RFC 5545 / iTIP RFC 5546) invitations for booking emails, built with ``icalendar``.

One VEVENT per booking with the stable UID ``booking-<pk>-<created>@<ICAL_UID_DOMAIN>`` (``ical_uid``); every
change raises SEQUENCE, so calendar clients apply the latest: ``REQUEST`` for a new or moved booking,
``CANCEL`` when it is cancelled (or, naming only them and without STATUS, for a host who no longer hosts it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.utils.encoding import punycode
from icalendar import Calendar, Event, vCalAddress, vText

REQUEST = "REQUEST"
CANCEL = "CANCEL"
PUBLISH = "PUBLISH"  # a calendar file to add (the manage page's download), not an invitation
UID_PREFIX = "booking-"


def booking_identity(pk: int, created_at: datetime) -> str:
    """A booking's key and creation instant (microseconds, UTC): another database's booking of that key,
    after a reset or on another installation, has another one."""
    return f"{pk}-{created_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def ical_uid(pk: int, created_at: datetime) -> str:
    """A booking's UID: its identity at this installation's domain."""
    return f"{UID_PREFIX}{booking_identity(pk, created_at)}@{settings.ICAL_UID_DOMAIN}"


def is_own_uid(uid: str) -> bool:
    """Whether ``uid`` is one of this installation's booking UIDs (another Baton's invitation is not)."""
    return uid.startswith(UID_PREFIX) and uid.endswith(f"@{settings.ICAL_UID_DOMAIN}")


def ascii_address(email: str) -> str:
    """``email`` with its domain in the ASCII (IDNA) form, as Django sends to it: a CAL-ADDRESS is a URI,
    and a calendar client recognises its user by the address the invitation reached."""
    local, _, domain = email.rpartition("@")
    try:
        return f"{local}@{punycode(domain)}" if local and not domain.isascii() else email
    except UnicodeError:  # not a valid IDNA domain (checked at booking): left as it is
        return email


_ASKED = {"PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}


def _param_text(value: str) -> str:
    """``value`` as a parameter value every client shows as written: RFC 5545 allows no DQUOTE in one, and
    ``icalendar`` writes it as RFC 6868's ``^'``, which Outlook/Exchange and Google Calendar show as it is
    (``Robert ^'Bob^' Smith``); it is sent as an apostrophe (``Robert 'Bob' Smith``)."""
    return value.replace('"', "'")


def _address(email: str, name: str, **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{ascii_address(email)}")
    address.params["CN"] = vText(_param_text(name or email))
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def invitation(
    *,
    method: str,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    location: str,
    organizer: tuple[str, str],
    attendees: list[tuple[str, str]],
    accepted: str = "",
    stamp: datetime | None = None,
    uninvite: bool = False,
) -> bytes:
    """An iTIP message (``method`` REQUEST or CANCEL; PUBLISH, given no attendees, for a download).
    ``organizer``/``attendees`` are (name, email); the attendee whose address is ``accepted`` is one whose
    answer is not asked (PARTSTAT=ACCEPTED, no RSVP: a host, told of the meeting they host), the others
    NEEDS-ACTION with RSVP. ``uninvite``: a CANCEL that removes ``attendees`` from a meeting that goes on
    (a host released from it), which carries no STATUS: ``STATUS:CANCELLED`` cancels the whole event, and
    RFC 5546 §3.2.5 forbids it when uninviting specific attendees."""
    cal = Calendar()
    cal.add("prodid", "-//Baton//Meeting Router//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", (stamp or datetime.now(UTC)).astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("summary", summary)
    event.add("description", description)
    if location:
        event.add("location", location)
    if not uninvite:
        event.add("status", "CANCELLED" if method == CANCEL else "CONFIRMED")
    event.add("organizer", _address(organizer[1], organizer[0]))
    for name, email in attendees:
        answer = {"PARTSTAT": "ACCEPTED"} if email.lower() == accepted.lower() else _ASKED
        event.add("attendee", _address(email, name, ROLE="REQ-PARTICIPANT", **answer), encode=0)
    cal.add_component(event)
    return cal.to_ical()
