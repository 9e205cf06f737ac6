"""Read-side queries about reps' calendars used by routing and booking."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from calendars.models import BookingEvent, BusyHistory, BusyInterval, Calendar, CalendarConnection
from routing import sqlrows
from routing.core import Interval

Provider = CalendarConnection.Provider
Status = CalendarConnection.Status
WRITABLE = (Provider.GOOGLE, Provider.MICROSOFT)
RELIST_FIRST = timedelta(minutes=5)  # a connection never listed: first wait before listing it again
RELIST_MAX = timedelta(hours=6)  # … growing with how long it has been failing, up to this
# plain SQL on the hot path (every slot page and booking): see routing.sqlrows
HEALTH_SQL = """
SELECT c.rep_id, c.status, c.last_success_at, c.provider, k.id, k.blocks_availability, k.last_synced_at
FROM calendars_calendarconnection c LEFT OUTER JOIN calendars_calendar k ON k.connection_id = c.id
WHERE c.rep_id {reps}
"""


@dataclass(frozen=True)
class CalendarHealth:
    """What Baton can say about some reps' connected calendars (``calendar_health``)."""

    withheld: frozenset[int]  # busy time cannot be trusted now: never offer or assign them
    live: frozenset[int]  # a Google/Microsoft calendar that blocks availability: ask it live at booking time


def calendar_health(rep_ids: Iterable[int], *, now: datetime) -> CalendarHealth:
    """One query (connections left-joined with their calendars), whatever the number of reps.

    A rep is withheld when Baton can no longer see their busy time:
    * a connection whose grant was revoked or expired (status ``disconnected``);
    * a connection that never completed a first listing/sync (``last_success_at`` empty);
    * a calendar that blocks availability and has not synced successfully within
      ``CALENDAR_STALENESS_MINUTES`` (or never has).
    Reps with no connected calendar are judged by the busy times entered in Baton alone and are never
    withheld here. ``live`` are the reps that ``calendars.live.hosts_busy_live`` would ask a provider about
    (a blocking calendar of a Google/Microsoft connection that is not disconnected); for the others it
    has nothing to ask, so booking skips it.
    """
    query = health_query(rep_ids, now=now)
    if query is None:
        return CalendarHealth(frozenset(), frozenset())
    return query.read(sqlrows.rows(query.sql, query.params))


@dataclass(frozen=True)
class HealthQuery:
    """``calendar_health``'s statement, for a caller that sends it with others (``sqlrows.batch``), and
    how to read its rows."""

    sql: str
    params: list
    cutoff: datetime  # a blocking calendar last synced before it is stale

    def read(self, found) -> CalendarHealth:
        withheld: set[int] = set()
        live: set[int] = set()
        for rep_id, status, last_success, provider, calendar, blocks, synced in found:
            if status == Status.DISCONNECTED or last_success is None:
                withheld.add(rep_id)
            if calendar is None or not blocks:
                continue
            if synced is None or sqlrows.aware(synced) < self.cutoff:
                withheld.add(rep_id)
            if provider in WRITABLE and status != Status.DISCONNECTED:
                live.add(rep_id)
        return CalendarHealth(frozenset(withheld), frozenset(live))


def health_query(rep_ids: Iterable[int], *, now: datetime) -> HealthQuery | None:
    """``calendar_health`` in two steps (None: no reps, nothing to ask)."""
    reps = sorted(set(rep_ids))
    if not reps:
        return None
    among, params = sqlrows.among(reps)
    cutoff = now - timedelta(minutes=settings.CALENDAR_STALENESS_MINUTES)
    return HealthQuery(HEALTH_SQL.format(reps=among), params, cutoff)


def withheld_rep_ids(rep_ids: Iterable[int], *, now: datetime) -> set[int]:
    """Reps whose availability cannot be trusted now and must not be offered (``calendar_health``)."""
    return set(calendar_health(rep_ids, now=now).withheld)


def relist_due_ids(*, now: datetime) -> list[int]:
    """Connections (not disconnected) whose calendars were never listed (``last_success_at`` empty: the
    rep is withheld from every booking page) and are due another listing: the first listing failed (the
    provider throttled or was down at connect time) or never finished. Back-off: wait as long as the
    connection has been failing (its creation to its last attempt, ``last_sync_at``), at least
    ``RELIST_FIRST``, at most ``RELIST_MAX`` (about 5, 10, 20, 40 min … 6 h), so a provider that keeps
    refusing is not hammered."""
    rows = (
        CalendarConnection.objects.filter(last_success_at__isnull=True)
        .exclude(status=Status.DISCONNECTED)
        .values_list("pk", "created_at", "last_sync_at")
    )
    due = []
    for pk, created, attempted in rows:
        attempted = attempted or created
        if now - attempted >= min(max(attempted - created, RELIST_FIRST), RELIST_MAX):
            due.append(pk)
    return due


def receiving_calendar(rep_id: int) -> Calendar | None:
    """The Google/Microsoft calendar that receives the rep's bookings, if any (and not disconnected)."""
    return (
        Calendar.objects.filter(
            connection__rep_id=rep_id, receives_bookings=True, connection__provider__in=WRITABLE
        )
        .exclude(connection__status=Status.DISCONNECTED)
        .select_related("connection")
        .order_by("pk")
        .first()
    )


def invitation_sent_by_provider(rep_id: int) -> bool:
    """True when bookings led by this rep are written to Google/Microsoft, which then invites the prospect:
    the booking email must not send a second invitation. False: the email's .ics invitation is the invite."""
    return receiving_calendar(rep_id) is not None


def booking_join_url(booking_id: int, *, rep_id: int | None = None) -> str:
    """The video link the provider created for a booking, or "" when there is none yet; with ``rep_id``, only
    that rep's event's (the lead host's: another host's event, e.g. a former lead's about to be cancelled,
    holds no link of this meeting)."""
    events = BookingEvent.objects.filter(booking_id=booking_id, state=BookingEvent.State.ACTIVE)
    if rep_id is not None:
        events = events.filter(rep_id=rep_id)
    event = events.exclude(join_url="").order_by("pk").first()
    return event.join_url if event else ""


def lead_event_link(booking_id: int, *, rep_id: int) -> tuple[str, int]:
    """The video link of ``rep_id``'s (the lead host's) active event of a booking ("" while there is none)
    and the SEQUENCE that event is written at (-1: not written yet), for a co-host's e-mail waiting for the
    link (``booking.email_bodies.with_link``)."""
    event = (
        BookingEvent.objects.filter(booking_id=booking_id, rep_id=rep_id, state=BookingEvent.State.ACTIVE)
        .values_list("join_url", "written_sequence")
        .first()
    )
    return event or ("", -1)


def rep_connections(rep_id: int):
    return (
        CalendarConnection.objects.filter(rep_id=rep_id)
        .prefetch_related("calendars")
        .order_by("provider", "account_email", "pk")
    )


@dataclass(frozen=True)
class BusyTimeline:
    """Synced busy time as it was known at each instant of ``[start, end)`` (for the routing simulator).

    ``hidden_at_start``: rows stored now that a sync had not stored yet at ``start`` (take them out of a
    schedule loaded from today's rows); ``shown_at_start``: removed rows (``BusyHistory``) that were there at
    ``start`` (add them); ``events``: ``(at, rep id, interval, appears)`` inside the period, sorted by time —
    a row appears when a sync stored it and disappears when a later sync removed it."""

    hidden_at_start: dict[int, list[Interval]]
    shown_at_start: dict[int, list[Interval]]
    events: list[tuple[datetime, int, Interval, bool]]


def busy_timeline(
    rep_ids: Iterable[int], *, start: datetime, end: datetime, lo: datetime, hi: datetime
) -> BusyTimeline:
    """Rows overlapping ``[lo, hi)``; rows without ``synced_at`` (entered in Baton, or stored before Baton
    recorded sync times) count as known since ever. Two queries."""
    ids = list(set(rep_ids))
    hidden: dict[int, list[Interval]] = defaultdict(list)
    shown: dict[int, list[Interval]] = defaultdict(list)
    events: list[tuple[datetime, int, Interval, bool]] = []
    for rep_id, a, b, synced in BusyInterval.objects.filter(
        rep_id__in=ids, end__gt=lo, start__lt=hi, synced_at__gt=start
    ).values_list("rep_id", "start", "end", "synced_at"):
        hidden[rep_id].append(Interval(a, b))
        if synced < end:
            events.append((synced, rep_id, Interval(a, b), True))
    for rep_id, a, b, synced, removed in BusyHistory.objects.filter(
        rep_id__in=ids, end__gt=lo, start__lt=hi, removed_at__gt=start
    ).values_list("rep_id", "start", "end", "synced_at", "removed_at"):
        if synced is not None and synced >= end:
            continue
        if synced is None or synced <= start:
            shown[rep_id].append(Interval(a, b))
        else:
            events.append((synced, rep_id, Interval(a, b), True))
        if removed < end:
            events.append((removed, rep_id, Interval(a, b), False))
    events.sort(key=lambda e: (e[0], not e[3]))
    return BusyTimeline(dict(hidden), dict(shown), events)
