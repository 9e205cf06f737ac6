"""The provider contract every calendar backend implements.

Providers speak to the outside world only; they know nothing about Django models. Every datetime they
return is timezone-aware UTC. Credentials come in as a plain dict and changed credentials (refreshed
tokens, an updated MSAL cache) go back out through the ``on_secrets_changed`` callback, which the services
layer encrypts and stores.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calendars.errors import ReadOnlyCalendar

SecretsCallback = Callable[[dict], None]


@dataclass(frozen=True, slots=True)
class RemoteCalendar:
    external_id: str
    name: str
    is_primary: bool = False
    can_write: bool = False
    timezone: str = ""
    online_meeting_providers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BusyEvent:
    """One busy stretch of one event instance, [start, end) in UTC."""

    external_id: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class SyncResult:
    """Changes since the given sync state.

    ``full`` means the result is the complete set of busy events in the window (the caller replaces what it
    had); otherwise ``upserts`` replace events with the same id and ``deletions`` remove ids (including
    events that stopped being busy, e.g. turned transparent or declined). ``next_state`` is the cursor for
    the next call. ``unchanged`` is a full result the provider knows to be identical to the last one.
    ``warning``: the sync succeeded, but something in the calendar was left out (shown where a sync error
    would be).
    """

    upserts: list[BusyEvent] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    next_state: str = ""
    full: bool = False
    unchanged: bool = False
    warning: str = ""
    removed: list[str] = field(default_factory=list)  # of ``deletions``: events deleted or cancelled


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event Baton writes for a booking. ``key`` is deterministic per booking, host and generation and
    makes the create idempotent at the provider (Google event id, Graph transactionId)."""

    key: str
    title: str
    description: str
    start: datetime
    end: datetime
    timezone: str
    attendees: tuple[tuple[str, str], ...] = ()  # (name, email)
    location: str = ""
    video: bool = False
    notify: bool = True
    booking_id: int | None = None


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    external_id: str
    join_url: str = ""
    # the provider is still making the video link (Google's asynchronous conference creation): the event is
    # written, its link is not known yet; write it again later to read it
    link_pending: bool = False


@dataclass(frozen=True, slots=True)
class Watch:
    """A push channel (Google) or subscription (Microsoft)."""

    channel_id: str
    resource_id: str
    expiration: datetime


class CalendarProvider(abc.ABC):
    """One connected account.

    Methods raise ``GrantRevoked``, ``ProviderUnavailable`` or ``ReadOnlyCalendar``.
    """

    name: str = ""
    read_only: bool = False
    supports_push: bool = False

    @abc.abstractmethod
    def list_calendars(self) -> list[RemoteCalendar]: ...

    @abc.abstractmethod
    def account_email(self) -> str: ...

    @abc.abstractmethod
    def sync(
        self, calendar_id: str, state: str, *, window: tuple[datetime, datetime], zone: ZoneInfo
    ) -> SyncResult:
        """Changes since ``state`` ("" = full sync of ``window``). An expired state triggers a full sync."""

    @abc.abstractmethod
    def busy_in(
        self, calendar_ids: list[str], start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Live free/busy: busy stretches overlapping [start, end) over the given calendars."""

    def confirm_removed(self, calendar_id: str, external_ids: list[str]) -> list[str]:
        """Those of ``external_ids`` (reported by ``sync`` as ``removed``) that really are gone from the
        calendar; a provider whose sync reports only real deletions takes them as they are."""
        return list(external_ids)

    def create_event(self, calendar_id: str, draft: EventDraft, *, online_provider: str = "") -> WrittenEvent:
        raise ReadOnlyCalendar()

    def update_event(
        self, calendar_id: str, external_id: str, draft: EventDraft, *, online_provider: str = ""
    ) -> WrittenEvent:
        """Rewrite the event as ``draft``; a draft with ``video`` gets a conference if the event has none."""
        raise ReadOnlyCalendar()

    def cancel_event(self, calendar_id: str, external_id: str, *, notify: bool = True) -> None:
        raise ReadOnlyCalendar()

    def cancel_unconfirmed(
        self, calendar_id: str, key: str, *, start: datetime, end: datetime, notify: bool = True
    ) -> None:
        """Cancel the event a create with idempotency ``key`` may have made though its answer never came (a
        timeout: the provider may have gone on and made it); nothing if it made none. ``start``/``end``:
        the times the creates were sent for, where a provider that cannot address the event by its key
        looks for it."""
        raise ReadOnlyCalendar()

    def subscribe(self, calendar_id: str, *, address: str, secret: str, ttl: timedelta) -> Watch:
        raise ReadOnlyCalendar()

    def renew(self, calendar_id: str, watch: Watch, *, address: str, secret: str, ttl: timedelta) -> Watch:
        """Extend ``watch``, or open a new channel in its place (another ``channel_id``): then the old one is
        still open, and the caller stops it once it has recorded the new one."""
        raise ReadOnlyCalendar()

    def unsubscribe(self, watch: Watch) -> None:
        raise ReadOnlyCalendar()


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC. Within hours of the years 1 and 9999 it has no UTC instant (an event "until
    9999-12-31T23:00-08:00"): it becomes the first or last representable one, so busy time stays busy."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        last = value.year > 1
        return (datetime.max if last else datetime.min).replace(tzinfo=UTC)  # noqa: DTZ901 — made aware


def local_date_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight starting ``day`` in ``zone``, as UTC (all-day events cover whole local days)."""
    return to_utc(datetime.combine(day, time(0), tzinfo=zone))


def parse_rfc3339(value: str) -> datetime:
    """Parse RFC 3339 / ISO 8601 timestamps, including 7-digit fractions (Graph) and ``Z``."""
    text = value.strip()
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        suffix = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{suffix}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
