"""The times the booking e-mails tell (booking/emails.py), each in its reader's zone: the meeting's, and
where a change moved it, the time it was moved from ("Was: …")."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from booking.presenters import when_label, zone_label


def when(snap: dict, zone: str) -> str:
    """As the pages write it ("Monday 7 December 2026, 10:00–10:30"), with the zone named (and its UTC
    offset where its name would mislead: ``presenters.zone_label``)."""
    start, end = datetime.fromisoformat(snap["start"]), datetime.fromisoformat(snap["end"])
    tz = ZoneInfo(zone)
    return f"{when_label(start, end, tz)} ({zone_label(tz, start)})"


def moved_from(snap: dict, before: dict) -> dict:
    """For a fan-out payload: ``{"was": {"start", "end"}}``, the meeting's time before the change
    (``before``: ``emails.previous``), where the change moved it (a reschedule; a reassignment keeps the
    time, a new booking has no time before); otherwise nothing."""
    start, end = before.get("start"), before.get("end")
    if not start or not end:
        return {}
    then = (datetime.fromisoformat(start), datetime.fromisoformat(end))
    if then == (datetime.fromisoformat(snap["start"]), datetime.fromisoformat(snap["end"])):
        return {}
    return {"was": {"start": start, "end": end}}


def was_lines(payload: dict, zone: str) -> list[str]:
    """``["Was: Tuesday 24 March 2026, 15:00–15:30 (Europe/Berlin)"]`` for a payload of a change that
    moved the meeting (``moved_from``), in the reader's zone; ``[]`` for any other, and for a host the
    meeting is new to (``new``: they never held the time it had)."""
    was = payload.get("was")
    return [f"Was: {when(was, zone)}"] if was and not payload.get("new") else []
