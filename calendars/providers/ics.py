"""ICS feeds: a secret iCal URL the rep pastes, polled with requests, parsed with icalendar and expanded
with recurring-ical-events (RRULE, RDATE, EXDATE, RECURRENCE-ID, VTIMEZONE, X-WR-TIMEZONE).

Read-only: no writes, no push. Every poll yields the full set of busy instances in the window (the caller
replaces what it had, writing only the difference). ETag / Last-Modified make an unchanged feed cheap.
The URL is a secret: it is stored encrypted and never logged; only its host is shown.
URLs that resolve to loopback, private or link-local addresses are refused (server-side request
forgery) unless ``CALENDAR_ICS_ALLOW_PRIVATE_HOSTS`` is on.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import requests
from dateutil import tz as dateutil_tz
from django.conf import settings

from booking.ics import is_own_uid
from calendars.errors import InvalidFeed, ProviderUnavailable
from calendars.providers.base import (
    BusyEvent,
    CalendarProvider,
    RemoteCalendar,
    SyncResult,
    local_date_start,
    to_utc,
)
from calendars.providers.ics_cost import STEPS_PER_INSTANCE, BadRule, expansion_cost
from calendars.providers.ics_fixups import prepare
from calendars.providers.safe_http import (
    ACCEPT_ENCODING,
    TOO_SLOW,
    feed_session,
    public_address,
    read_body,
)

FEED_ID = "feed"
SKIPPED = "Synced, but repeating events in this feed that cannot be read do not count as busy. The first:"
UNKNOWN_ZONES = (
    "events in this feed name a time zone that is not known; their times are read as local times (in the "
    "feed's X-WR-TIMEZONE, else the rep's zone):"
)
MAX_REDIRECTS = 3
FETCH_DEADLINE = 2  # a whole fetch may take this many times the per-read timeout (20 s by default: 40 s)


def normalise_url(url: str) -> str:
    url = (url or "").strip()
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed or invalid [IPv6] host: "https://[::1/feed.ics"
        raise InvalidFeed("Enter an http(s):// or webcal:// calendar URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidFeed("Enter an http(s):// or webcal:// calendar URL.")
    try:
        parts.port  # noqa: B018 — urllib checks the port when it is read
    except ValueError:
        raise InvalidFeed("The calendar URL's port is not a number from 1 to 65535.") from None
    try:
        parts.hostname.encode("idna")
    except UnicodeError:  # a label over 63 characters, an empty one …
        raise InvalidFeed("The calendar URL's host name is not a valid domain name.") from None
    return url


def feed_label(url: str) -> str:
    """What may be shown about a feed: its host only (the path and query are the secret)."""
    try:
        return urlsplit(url).hostname or "ICS feed"
    except ValueError:  # a broken [IPv6] host (normalise_url refuses it): a label never fails
        return "ICS feed"


def _check_host(url: str) -> None:
    """Refuse a URL whose host resolves to a private address before any request (the connection checks
    its own address again: ``safe_http``, against DNS rebinding)."""
    if settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS:
        return
    parts = urlsplit(url)
    try:
        public_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror:
        raise InvalidFeed("The calendar URL's host name does not resolve.") from None


def fetch(url: str, *, headers: dict | None = None, timeout: float | None = None) -> requests.Response | None:
    """GET the feed; None means 304 Not Modified. Redirects are followed by hand so each hop is checked.
    ``timeout`` bounds each read, and the whole fetch (every hop, its status line and headers, and the body)
    gets ``FETCH_DEADLINE`` times it (``safe_http.FeedAdapter``, ``safe_http.read_body``)."""
    timeout = timeout or settings.CALENDAR_HTTP_TIMEOUT_SECONDS
    deadline = time.monotonic() + FETCH_DEADLINE * timeout
    public_only = not settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS
    with feed_session(public_only=public_only, deadline=deadline) as session:
        return _fetch(session, url, headers, timeout, deadline)


def _fetch(session: requests.Session, url: str, headers: dict | None, timeout: float, deadline: float):
    for _ in range(MAX_REDIRECTS + 1):
        normalise_url(url)
        _check_host(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderUnavailable(TOO_SLOW)
        try:
            resp = session.get(
                url,
                headers={
                    "Accept": "text/calendar, */*;q=0.5",
                    "Accept-Encoding": ACCEPT_ENCODING,
                    **(headers or {}),
                },
                timeout=(min(timeout, left), timeout),  # (connect, each read: the session keeps the deadline)
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if time.monotonic() >= deadline:
                raise ProviderUnavailable(TOO_SLOW) from None
            raise ProviderUnavailable(f"The ICS feed did not answer ({exc.__class__.__name__})") from None
        except ValueError:
            # requests works out a redirect's next address even when not following it, and urllib refuses
            # a Location with a broken [IPv6] host ("https://[::1/"): a 500 on the rep's page otherwise
            raise InvalidFeed("The ICS feed redirects to an address that is not a URL.") from None
        if resp.is_redirect and resp.headers.get("Location"):
            url = urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        if resp.status_code == 304:
            return None
        if resp.status_code >= 400:
            resp.close()
            raise ProviderUnavailable(
                f"The ICS feed answered HTTP {resp.status_code}", status=resp.status_code
            )
        try:
            resp._content = read_body(resp, limit=settings.CALENDAR_ICS_MAX_BYTES, deadline=deadline)
        finally:
            resp.close()
        return resp
    raise InvalidFeed("The ICS feed redirects too often.")


def parse(data: bytes) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError:
        raise InvalidFeed("The URL does not serve an iCalendar (.ics) feed.") from None
    if calendar.name != "VCALENDAR":
        raise InvalidFeed("The URL does not serve an iCalendar (.ics) feed.")
    return calendar


def _instant(value, zone: ZoneInfo) -> datetime:
    """An iCalendar DATE / floating / zoned DATE-TIME as a UTC instant; dates and floating times are read in
    the rep's zone (nonexistent local times move forward, ambiguous ones take the first occurrence)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            local = value.replace(tzinfo=zone)
            if not dateutil_tz.datetime_exists(local):
                local = dateutil_tz.resolve_imaginary(local)
            return local.astimezone(UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return local_date_start(value, zone)
    raise InvalidFeed("An event has an unreadable start or end.")


# What recurring-ical-events leaves out with ``skip_bad_series`` (a malformed RRULE, an end before the start)
UNREADABLE_SERIES = tuple(recurring_ical_events.CalendarQuery.suppressed_errors)


def busy_events(
    calendar: icalendar.Calendar,
    window: tuple[datetime, datetime],
    zone: ZoneInfo,
    *,
    skipped: list[str] | None = None,
    unknown_zones: list[str] | None = None,
    emails: tuple[str, ...] = (),
) -> list[BusyEvent]:
    """Every opaque, non-cancelled event instance overlapping ``window`` that none of the rep's ``emails``
    declined, expanded and in UTC. A series the library cannot read is left out rather than failing the
    feed, and the first such problem is appended to ``skipped``, so that the rep can be told that some of
    their busy time is not counted; TZIDs no zone is known for are listed in ``unknown_zones``."""
    start, end = window
    skipped = [] if skipped is None else skipped
    prepare(calendar, zone, skipped=skipped, unknown_zones=[] if unknown_zones is None else unknown_zones)
    # floating times and dates are compared in the rep's zone: query with local wall-clock bounds
    local_start = start.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    local_end = end.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    _check_cost(calendar, (local_start, local_end), zone, days=(end - start).days)
    try:
        try:
            instances = recurring_ical_events.of(calendar).between(local_start, local_end)
        except UNREADABLE_SERIES as exc:  # again, without the series that cannot be read
            skipped.append(str(exc)[:300])
            instances = recurring_ical_events.of(calendar, skip_bad_series=True).between(
                local_start, local_end
            )
    except Exception as exc:  # the library raises its own error types for malformed series
        raise InvalidFeed(f"The ICS feed cannot be expanded ({exc.__class__.__name__}).") from None
    found: dict[str, BusyEvent] = {}
    mailtos = {f"mailto:{email.strip().lower()}" for email in emails if email}
    for event in instances:
        if mailtos and _declined(event, mailtos):
            continue
        try:
            busy = _busy(event, window, zone)
        except OverflowError:  # e.g. a floating RECURRENCE-ID at 9999-12-31T23:59 west of Greenwich
            raise InvalidFeed("An event in the ICS feed has a date beyond the year 9999.") from None
        if busy is not None:
            found[busy.external_id] = busy
    return list(found.values())


def _check_cost(calendar, local_window, zone: ZoneInfo, *, days: int) -> None:
    limit = settings.CALENDAR_ICS_MAX_INSTANCES
    try:
        cost = expansion_cost(calendar, local_window, zone)
    except BadRule as exc:
        raise InvalidFeed(f"An event in the ICS feed repeats by an invalid rule ({exc}).") from None
    if cost.instances > limit:
        raise InvalidFeed(
            f"The ICS feed repeats events too often: up to {cost.instances:,} instances in the next {days} "
            f"days (CALENDAR_ICS_MAX_INSTANCES is {limit:,})."
        )
    if cost.steps > limit * STEPS_PER_INSTANCE:
        raise InvalidFeed(
            f"The ICS feed repeats events too often: up to {cost.steps:,} repetitions to step through from "
            f"the series' starts (at most {limit * STEPS_PER_INSTANCE:,}, CALENDAR_ICS_MAX_INSTANCES × "
            f"{STEPS_PER_INSTANCE})."
        )


def _busy(event, window: tuple[datetime, datetime], zone: ZoneInfo) -> BusyEvent | None:
    """One expanded instance as busy time, or None (transparent, cancelled, ours, momentary, outside)."""
    start, end = window
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return None
    uid = str(event.get("UID", ""))
    if is_own_uid(uid):  # this installation's invitation: its booking blocks the host already
        return None
    dtstart = event.get("DTSTART")
    if dtstart is None:
        return None
    begin = _instant(dtstart.dt, zone)
    if event.get("DTEND") is not None:
        finish = _instant(event["DTEND"].dt, zone)
    elif event.get("DURATION") is not None:
        finish = begin + event["DURATION"].dt
    elif isinstance(dtstart.dt, datetime):
        return None  # a moment, not a stretch of time
    else:
        finish = _instant(dtstart.dt + timedelta(days=1), zone)
    if finish <= begin or finish <= start or begin >= end:
        return None
    # An instance is its UID and the occurrence it stands for (RFC 5545 §3.8.4.4). The library gives every
    # instance a "this and future" change moved the RECURRENCE-ID of that change: their own starts tell
    # them apart. Events without a UID (older feeds) are told apart by their times.
    rid = event.get("RECURRENCE-ID")
    moved_on = rid is not None and str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE"
    anchor = _instant(rid.dt, zone) if rid is not None and not moved_on else begin
    external_id = f"{uid}|{_stamp(anchor)}" + ("" if uid else f"|{_stamp(finish)}")
    return BusyEvent(external_id=external_id[:900], start=to_utc(begin), end=to_utc(finish))


def _declined(event, mailtos: set[str]) -> bool:
    """Whether the rep declined this instance: an ATTENDEE with the rep's address and PARTSTAT=DECLINED
    (Google's secret address exports the meetings its owner declined; Google's and Microsoft's syncs
    leave them out)."""
    attendees = event.get("ATTENDEE")
    for attendee in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
        if str(attendee).strip().lower() in mailtos:
            return str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper() == "DECLINED"
    return False


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


class IcsProvider(CalendarProvider):
    name = "ics"
    read_only = True

    def __init__(
        self,
        secrets: dict,
        *,
        on_secrets_changed=None,
        timeout: float | None = None,
        retries: int = 0,
        zone: ZoneInfo | None = None,
        emails: tuple[str, ...] = (),
    ):
        self._url = secrets.get("url", "")
        self._timeout = timeout
        self._zone = zone or ZoneInfo("UTC")
        self._emails = emails  # the rep's: meetings they declined do not block

    def __repr__(self) -> str:
        return "<IcsProvider>"

    def list_calendars(self) -> list[RemoteCalendar]:
        resp = fetch(self._url, timeout=self._timeout)
        calendar = parse(resp.content)
        name = str(calendar.get("X-WR-CALNAME", "")) or feed_label(self._url)
        return [RemoteCalendar(external_id=FEED_ID, name=name, is_primary=True)]

    def account_email(self) -> str:
        return feed_label(self._url)

    def sync(
        self, calendar_id: str, state: str, *, window: tuple[datetime, datetime], zone: ZoneInfo
    ) -> SyncResult:
        previous = json.loads(state) if state else {}
        headers = {}
        covered = previous.get("window_end")
        if covered and datetime.fromisoformat(covered) >= window[1] - timedelta(days=1):
            if previous.get("etag"):
                headers["If-None-Match"] = previous["etag"]
            if previous.get("last_modified"):
                headers["If-Modified-Since"] = previous["last_modified"]
        resp = fetch(self._url, headers=headers, timeout=self._timeout)
        if resp is None:  # the same feed: the same warning
            return SyncResult(
                full=True, unchanged=True, next_state=state, warning=previous.get("warning", "")
            )
        skipped: list[str] = []
        unknown: list[str] = []
        calendar = parse(resp.content)
        events = busy_events(
            calendar, window, zone, skipped=skipped, unknown_zones=unknown, emails=self._emails
        )
        notes = [f"{SKIPPED} {skipped[0]}"] if skipped else []
        if unknown:
            notes.append(f"{'Also,' if notes else 'Synced, but'} {UNKNOWN_ZONES} {', '.join(unknown)[:200]}")
        warning = " ".join(notes)
        next_state = json.dumps(
            {
                "etag": resp.headers.get("ETag", ""),
                "last_modified": resp.headers.get("Last-Modified", ""),
                "window_end": window[1].isoformat(),
                "warning": warning,
            }
        )
        return SyncResult(upserts=events, full=True, next_state=next_state, warning=warning)

    def busy_in(
        self, calendar_ids: list[str], start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        resp = fetch(self._url, timeout=self._timeout)
        events = busy_events(parse(resp.content), (start, end), self._zone, emails=self._emails)
        return [(e.start, e.end) for e in events]
