"""Reading Google Calendar event resources: which events.list items block time (and when), and the state of
an event's Meet conference."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from booking.ics import is_own_uid
from calendars.providers.base import BusyEvent, local_date_start, parse_rfc3339, to_utc

MARKER = "batonBooking"  # extendedProperties.private key on the events Baton writes


def calendar_zone(resp: dict, fallback: ZoneInfo) -> ZoneInfo:
    """The zone an all-day event's dates are days of: the calendar's own (``timeZone`` of the events.list
    answer), as Google's free/busy reads them for the live check; the rep's when it is missing or unknown."""
    try:
        return ZoneInfo(resp["timeZone"]) if resp.get("timeZone") else fallback
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return fallback


def busy_from_event(item: dict, zone: ZoneInfo) -> BusyEvent | None:
    """The busy stretch of one events.list item, or None when it does not block time."""
    if item.get("status") == "cancelled" or item.get("transparency") == "transparent":
        return None
    if MARKER in ((item.get("extendedProperties") or {}).get("private") or {}):
        return None
    if is_own_uid(str(item.get("iCalUID") or "")):  # Gmail's copy of Baton's emailed invitation
        return None
    if any(a.get("self") and a.get("responseStatus") == "declined" for a in item.get("attendees") or []):
        return None
    start, end = item.get("start") or {}, item.get("end") or {}
    if "dateTime" in start and "dateTime" in end:
        begin, finish = to_utc(parse_rfc3339(start["dateTime"])), to_utc(parse_rfc3339(end["dateTime"]))
    elif "date" in start and "date" in end:
        begin = local_date_start(date.fromisoformat(start["date"]), zone)
        finish = local_date_start(date.fromisoformat(end["date"]), zone)  # exclusive end date
    else:
        return None
    if finish <= begin:
        return None
    return BusyEvent(external_id=item["id"], start=begin, end=finish)


def meet_request(request_id: str) -> dict:
    return {"createRequest": {"requestId": request_id, "conferenceSolutionKey": {"type": "hangoutsMeet"}}}


def conference_status(event: dict) -> str:
    """The status of the event's conference create request: "pending", "success", "failure" or ""."""
    create = (event.get("conferenceData") or {}).get("createRequest") or {}
    return str((create.get("status") or {}).get("statusCode") or "")


def join_url(event: dict) -> str:
    if event.get("hangoutLink"):
        return event["hangoutLink"]
    for entry in (event.get("conferenceData") or {}).get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return entry["uri"]
    return ""
