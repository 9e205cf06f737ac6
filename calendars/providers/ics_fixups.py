"""Shapes of real ICS feeds that recurring-ical-events misreads or refuses, set right before it expands them.

Each fix is one pass over the feed's events (linear in its size, no expansion):

* an ``X-WR-TIMEZONE`` with a Windows zone name (Exchange/Outlook export tools) is mapped to its IANA name
  with icalendar's own table, and an empty or unknown one is dropped: x-wr-timezone raised for it and the
  whole feed was refused;
* a VEVENT without DTSTART (a draft, or a DTSTART line the parser had to drop) has no time to block and is
  left out: the library raised ``KeyError('DTSTART')`` for the whole feed;
* Outlook / Microsoft 365 write ``TZID="tzone://Microsoft/Utc"`` with no VTIMEZONE: those times are UTC
  (icalendar leaves a TZID it cannot resolve as a floating time, read in the rep's zone). Any other such
  TZID is reported, and its times stay floating;
* a series with a floating DTSTART whose EXDATE / RDATE / RECURRENCE-ID are written with a zone (often UTC)
  has them turned into floating wall-clock times of the rep's zone: the library otherwise moves the whole
  series into that zone, an hour or more off, and the cancelled or moved occurrence no longer matches.

The calendar is changed in place (``ics.parse`` makes a new one per fetch); running the fixes twice changes
nothing more.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

X_WR_TIMEZONE = "X-WR-TIMEZONE"
DATED = ("DTSTART", "DTEND", "RDATE", "EXDATE", "RECURRENCE-ID")
# TZIDs some programs write without a VTIMEZONE that no zone database knows (lower case)
KNOWN_TZIDS = {"tzone://microsoft/utc": UTC}


def prepare(calendar: icalendar.Calendar, zone: ZoneInfo, *, skipped: list[str], unknown_zones: list[str]):
    """Apply every fix to ``calendar``. Events left out are described in ``skipped``; TZIDs (and an
    X-WR-TIMEZONE) that name no known zone are listed once each in ``unknown_zones``."""
    feed_zone = _fix_feed_zone(calendar, unknown_zones)
    events = _drop_undated(calendar, skipped)
    floating_series: set[str] = set()
    overrides = []
    for event in events:
        for name in DATED:
            for item in _items(event.get(name)):
                _resolve_tzid(item, unknown_zones)
        if feed_zone:
            continue  # x-wr-timezone puts floating and zoned times in that zone alike: they agree
        if event.get("RECURRENCE-ID") is not None:
            overrides.append(event)
        elif _is_floating(event.get("DTSTART")):
            floating_series.add(str(event.get("UID", "")))
            for name in ("EXDATE", "RDATE"):
                for item in _items(event.get(name)):
                    _to_wall_clock(item, zone)
    for event in overrides:
        if str(event.get("UID", "")) in floating_series:
            for item in _items(event.get("RECURRENCE-ID")):
                _to_wall_clock(item, zone)


def _fix_feed_zone(calendar: icalendar.Calendar, unknown_zones: list[str]) -> bool:
    """Leave a usable X-WR-TIMEZONE (a Windows name mapped), drop any other; whether one is left."""
    value = calendar.get(X_WR_TIMEZONE)
    if value is None:
        return False
    if isinstance(value, list):  # given twice: the first counts
        value = value[0] if value else ""
    name = str(value).strip()
    name = WINDOWS_TO_OLSON.get(name, name)
    try:
        ZoneInfo(name)  # what x-wr-timezone does with it
    except (ZoneInfoNotFoundError, ValueError):
        del calendar[X_WR_TIMEZONE]
        if name:
            _note(unknown_zones, name)
        return False
    calendar[X_WR_TIMEZONE] = icalendar.vText(name)
    return True


def _drop_undated(component, skipped: list[str]) -> list:
    """Remove the VEVENTs without a DTSTART under ``component`` (nested ones too, as the library finds
    them); the VEVENTs left."""
    kept, events = [], []
    for sub in component.subcomponents:
        if sub.name == "VEVENT" and sub.get("DTSTART") is None:
            skipped.append(f"An event has no start (DTSTART): UID {str(sub.get('UID', ''))[:200]!r}")
            continue
        kept.append(sub)
        if sub.name == "VEVENT":
            events.append(sub)
        if sub.subcomponents:
            events.extend(_drop_undated(sub, skipped))
    if len(kept) < len(component.subcomponents):
        component.subcomponents[:] = kept
    return events


def _items(prop) -> list:
    """A date property's values (RDATE / EXDATE: one or several, each a list of dates)."""
    return prop if isinstance(prop, list) else [] if prop is None else [prop]


def _datetimes(item) -> list:
    """The date-time values of one property value; none when icalendar could not read it (the library
    leaves such a series out and says so)."""
    try:
        values = item.dts if isinstance(item, icalendar.prop.vDDDLists) else [item]
        return [value for value in values if isinstance(value.dt, datetime)]
    except (ValueError, AttributeError):  # icalendar's BrokenCalendarProperty is a ValueError
        return []


def _resolve_tzid(item, unknown_zones: list[str]) -> None:
    """A TZID icalendar did not resolve leaves its times floating: set the zone where it is known."""
    tzid = str(getattr(item, "params", {}).get("TZID", ""))
    values = [value for value in _datetimes(item) if value.dt.tzinfo is None]
    if not tzid or not values:
        return
    zone: tzinfo | None = KNOWN_TZIDS.get(tzid.lower())
    if zone is None:
        _note(unknown_zones, tzid)  # read as floating, the best guess left
        return
    for value in values:
        value.dt = value.dt.replace(tzinfo=zone)
    _drop_tzid(item)


def _is_floating(prop) -> bool:
    try:
        return isinstance(prop.dt, datetime) and prop.dt.tzinfo is None
    except (ValueError, AttributeError):
        return False


def _to_wall_clock(item, zone: ZoneInfo) -> None:
    """Zoned date-times of a floating series as the rep's wall clock (the frame its DTSTART is read in)."""
    changed = False
    for value in _datetimes(item):
        if value.dt.tzinfo is not None:
            try:
                value.dt = value.dt.astimezone(zone).replace(tzinfo=None)
            except OverflowError:  # year 1 or 9999: left as it is
                continue
            changed = True
    if changed:
        _drop_tzid(item)


def _drop_tzid(item) -> None:
    item.params.pop("TZID", None)
    for value in getattr(item, "dts", []):
        value.params.pop("TZID", None)


def _note(found: list[str], name: str) -> None:
    if name[:100] not in found:
        found.append(name[:100])
