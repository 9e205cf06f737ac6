"""Reading Microsoft Graph event resources: which events block time (and when), the event's Teams link, the
``transactionId`` of the events Baton writes, and whether an event is the one a draft describes."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from booking.ics import is_own_uid
from calendars.providers.base import BusyEvent, EventDraft, local_date_start, parse_rfc3339, to_utc

TRANSACTION_PREFIX = "baton-"

# [MS-OXOCAL] 2.2.1.27: a Global Object ID starts with this class id; one made from another system's
# iCalendar UID carries it as data: "vCal-Uid", 1 (little-endian), the UID and a NUL.
GLOBAL_OBJECT_ID = bytes.fromhex("040000008200E00074C5B7101A82E008")
VCAL_UID = b"vCal-Uid\x01\x00\x00\x00"


def transaction_id(key: str) -> str:
    return TRANSACTION_PREFIX + str(uuid.uuid5(uuid.NAMESPACE_URL, f"baton:{key}"))


def _zone(name: str | None) -> ZoneInfo:
    if not name or name.upper() in ("UTC", "Z"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def event_time(value: dict) -> datetime:
    """A Graph ``dateTimeTimeZone`` (an event's start or end) as an aware datetime."""
    parsed = parse_rfc3339(value["dateTime"])
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(value.get("timeZone")))


def invitation_uid(value: str) -> str:
    """The iCalendar UID behind a Graph ``iCalUId``: Exchange reports an invitation's UID as the hex of
    the Global Object ID it made from it; anything else is taken as it is."""
    try:
        blob = bytes.fromhex(value)
    except ValueError:
        return value
    if not blob.startswith(GLOBAL_OBJECT_ID) or len(blob) < 40:
        return value
    data = blob[40 : 40 + int.from_bytes(blob[36:40], "little")]
    if not data.startswith(VCAL_UID):
        return value
    return data[len(VCAL_UID) :].rstrip(b"\x00").decode("utf-8", "replace")


def busy_from_event(item: dict, zone: ZoneInfo) -> BusyEvent | None:
    """The busy stretch of one Graph event, or None when it does not block time (removed, cancelled,
    free / working elsewhere, declined, or written by Baton)."""
    if "@removed" in item or item.get("isCancelled"):
        return None
    if item.get("showAs", "busy") in ("free", "workingElsewhere"):
        return None
    if (item.get("responseStatus") or {}).get("response") == "declined":
        return None
    if (item.get("transactionId") or "").startswith(TRANSACTION_PREFIX):
        return None
    # Outlook's copy of Baton's e-mailed invitation (the host's calendar does not receive bookings)
    if is_own_uid(invitation_uid(str(item.get("iCalUId") or ""))):
        return None
    if not item.get("start") or not item.get("end"):
        return None
    begin, finish = event_time(item["start"]), event_time(item["end"])
    if item.get("isAllDay"):
        # all-day events span whole local days; Graph reports them at midnight of their own zone
        first = begin.date() if begin.time() == datetime.min.time() else begin.astimezone(zone).date()
        last = finish.date() if finish.time() == datetime.min.time() else finish.astimezone(zone).date()
        begin, finish = local_date_start(first, zone), local_date_start(last, zone)
    begin, finish = to_utc(begin), to_utc(finish)
    if finish <= begin:
        return None
    return BusyEvent(external_id=item["id"], start=begin, end=finish)


def join_url(event: dict) -> str:
    meeting = event.get("onlineMeeting") or {}
    return meeting.get("joinUrl") or event.get("onlineMeetingUrl") or ""


def online_request(draft: EventDraft, online_provider: str) -> dict:
    """The fields asking Graph for an online meeting (Teams, …), for a draft with video."""
    wanted = draft.video and online_provider
    return {"isOnlineMeeting": True, "onlineMeetingProvider": online_provider} if wanted else {}


def as_drafted(event: dict, draft: EventDraft, *, online_provider: str = "") -> bool:
    """Whether ``event`` (as a create answered) is what ``draft`` asks for: its time, subject and attendees,
    and a link if one is asked for. A retried create (the same ``transactionId``) is answered with the event
    the first one made, as it was then: the booking may have moved (or its lead changed) since. The body is
    left out: Graph answers it as HTML, and a Teams meeting's holds the join details."""
    if not event.get("start") or not event.get("end"):
        return False
    if (to_utc(event_time(event["start"])), to_utc(event_time(event["end"]))) != (
        to_utc(draft.start),
        to_utc(draft.end),
    ):
        return False
    invited = {
        ((a.get("emailAddress") or {}).get("address") or "").lower() for a in event.get("attendees") or []
    }
    if event.get("subject") != draft.title or invited != {email.lower() for _, email in draft.attendees}:
        return False
    return not (online_request(draft, online_provider) and not join_url(event))
