"""One test harness per provider so the contract suite can drive Google, Microsoft and ICS alike: each
edits the user's calendar on the fake server and hands out the real provider client."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from booking.models import Booking
from calendars.models import Calendar, CalendarConnection
from calendars.services.connections import provider_for

ZONE = ZoneInfo("America/New_York")
FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Harness:
    name = ""
    writable = True

    def __init__(self, server, connection: CalendarConnection):
        self.server = server
        self.connection = connection
        self.calendar = Calendar.objects.get(connection=connection, is_primary=True)
        self.calendar_id = self.calendar.external_id

    def provider(self, **kwargs):
        return provider_for(self.connection, **kwargs)

    def slow(self, seconds: float) -> None:
        self.server.add_fault("*", ".*", delay=seconds, times=-1, passthrough=True)


class GoogleHarness(Harness):
    name = "google"

    def add_busy(self, start, end, **extra) -> str:
        return self.server.put_event(self.calendar_id, start=start, end=end, **extra)["id"]

    def add_free(self, start, end) -> str:
        return self.add_busy(start, end, transparency="transparent")

    def add_all_day(self, first: dt.date, after_last: dt.date) -> str:
        return self.server.put_event(self.calendar_id, start=first, end=after_last)["id"]

    def add_declined(self, start, end) -> str:
        return self.add_busy(
            start,
            end,
            attendees=[{"email": self.connection.account_email, "self": True, "responseStatus": "declined"}],
        )

    def move(self, event_id, start, end) -> None:
        self.server.put_event(self.calendar_id, start=start, end=end, event_id=event_id)

    def remove(self, event_id) -> None:
        self.server.cancel_event(self.calendar_id, event_id)

    def invalidate_state(self) -> None:
        self.server.invalidate_sync_tokens(self.calendar_id)

    def revoke(self) -> None:
        self.server.revoke(self.connection.account_email)
        self.server.expire_access_tokens()

    def set_page_size(self, size: int) -> None:
        self.server.page_size_cap = size

    def list_requests(self):
        return self.server.requests_to("GET", r"/calendar/v3/calendars/[^/]+/events")

    def throttle_once(self, retry_after: str) -> None:
        self.server.add_fault(
            "GET",
            r"/calendar/v3/calendars/[^/]+/events",
            status=429,
            headers={"Retry-After": retry_after},
            body=b'{"error": {"code": 429, "message": "Rate Limit Exceeded", "errors": '
            b'[{"reason": "rateLimitExceeded"}]}}',
        )

    def events(self) -> list[dict]:
        return [
            e for e in self.server.calendar(self.calendar_id).events.values() if e["status"] != "cancelled"
        ]

    def invitations(self) -> list[dict]:
        return self.server.invitations

    def subscriptions(self) -> dict:
        return self.server.channels


class MicrosoftHarness(Harness):
    name = "microsoft"

    def add_busy(self, start, end, **extra) -> str:
        return self.server.put_event(self.calendar_id, start=start, end=end, **extra)["id"]

    def add_free(self, start, end) -> str:
        return self.add_busy(start, end, show_as="free")

    def add_all_day(self, first: dt.date, after_last: dt.date) -> str:
        return self.server.put_event(
            self.calendar_id,
            start=dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC),
            end=dt.datetime.combine(after_last, dt.time(0), tzinfo=dt.UTC),
            all_day=True,
        )["id"]

    def add_declined(self, start, end) -> str:
        return self.add_busy(start, end, responseStatus={"response": "declined"})

    def move(self, event_id, start, end) -> None:
        self.server.put_event(self.calendar_id, start=start, end=end, event_id=event_id)

    def remove(self, event_id) -> None:
        self.server.delete_event(self.calendar_id, event_id)

    def invalidate_state(self) -> None:
        self.server.invalidate_delta(self.calendar_id)

    def revoke(self) -> None:
        self.server.revoke(self.connection.account_email)
        self.server.expire_access_tokens()

    def set_page_size(self, size: int) -> None:
        self.server.page_size_cap = size

    def list_requests(self):
        return self.server.requests_to("GET", r"/v1.0/me/calendars/[^/]+/calendarView/delta")

    def throttle_once(self, retry_after: str) -> None:
        self.server.add_fault(
            "GET",
            r"/v1.0/me/calendars/[^/]+/calendarView/delta",
            status=429,
            headers={"Retry-After": retry_after},
            body=b'{"error": {"code": "TooManyRequests", "message": "Please retry again later."}}',
        )

    def events(self) -> list[dict]:
        cal = self.server.calendar(self.calendar_id)[1]
        return [e for e in cal.events.values() if not e.get("_deleted")]

    def invitations(self) -> list[dict]:
        return self.server.invitations

    def subscriptions(self) -> dict:
        return self.server.subscriptions


class IcsHarness(Harness):
    """The rep's calendar app republishes the whole feed after every edit."""

    name = "ics"
    writable = False

    def __init__(self, server, connection: CalendarConnection, url: str):
        super().__init__(server, connection)
        self.url = url
        self.items: dict[str, dict] = {}

    def _publish(self) -> None:
        cal = icalendar.Calendar()
        cal.add("prodid", "-//Baton tests//EN")
        cal.add("version", "2.0")
        for uid, item in self.items.items():
            event = icalendar.Event()
            event.add("uid", uid)
            event.add("dtstamp", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            event.add("summary", "Busy")
            event.add("dtstart", item["start"])
            event.add("dtend", item["end"])
            if item.get("transparent"):
                event.add("transp", "TRANSPARENT")
            if item.get("declined"):
                event.add("status", "CANCELLED")
            cal.add_component(event)
        self.server.replace(self.url, cal.to_ical())

    def add_busy(self, start, end, **extra) -> str:
        uid = secrets.token_hex(6) + "@example.org"
        self.items[uid] = {"start": start, "end": end, **extra}
        self._publish()
        return uid

    def add_free(self, start, end) -> str:
        return self.add_busy(start, end, transparent=True)

    def add_all_day(self, first: dt.date, after_last: dt.date) -> str:
        return self.add_busy(first, after_last)

    def add_declined(self, start, end) -> str:
        return self.add_busy(start, end, declined=True)

    def move(self, event_id, start, end) -> None:
        self.items[event_id].update(start=start, end=end)
        self._publish()

    def remove(self, event_id) -> None:
        del self.items[event_id]
        self._publish()

    def invalidate_state(self) -> None:
        pass  # ICS has no cursor: every poll reads the whole feed

    def revoke(self) -> None:
        self.server.feeds.pop(self.url.rsplit("/", 2)[-2])


def primary(conn) -> Calendar:
    return Calendar.objects.get(connection=conn, is_primary=True)


def google_events(fake_google, conn) -> list[dict]:
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    return [e for e in fake_google.calendar(cal.external_id).events.values() if e["status"] != "cancelled"]


def reschedule(booking: Booking, hours: int) -> None:
    booking.start += dt.timedelta(hours=hours)
    booking.end += dt.timedelta(hours=hours)
    booking.sequence += 1
    booking.save()


def ms_events(fake_ms, conn) -> list[dict]:
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    return [e for e in fake_ms.calendar(cal.external_id)[1].events.values() if not e.get("_deleted")]
