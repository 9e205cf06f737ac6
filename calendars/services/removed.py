"""Hosts who delete the meeting Baton wrote into their calendar. An incremental sync passes the ids of
deleted or cancelled events here; a full sync (the first after a lost sync token, a window rolled forward,
a forced one) lists only the events that are there, so Baton's events of upcoming bookings in its window
that it does not list are passed as well (``events_missing_from_full_sync``). The ones Baton wrote (and
has not cancelled itself) are marked
(``BookingEvent.host_removed_at``, shown by the booking list's "needs attention" filter), and the people
who get calendar alerts are told once, with a link to each booking, since the booking still stands and the
prospect will come."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db.models import F

from booking.models import Booking
from calendars.models import BookingEvent, Calendar
from config.links import absolute_url

logger = logging.getLogger(__name__)
CHUNK = 500


def own_events_among(*, calendar: Calendar, event_ids: list[str]) -> list[str]:
    """The ids among ``event_ids`` of Baton's active events in ``calendar`` not marked removed yet: the
    ones a provider is asked to confirm gone (``CalendarProvider.confirm_removed``)."""
    found: list[str] = []
    for i in range(0, len(event_ids), CHUNK):
        found += BookingEvent.objects.filter(
            calendar=calendar,
            state=BookingEvent.State.ACTIVE,
            external_event_id__in=event_ids[i : i + CHUNK],
            host_removed_at__isnull=True,
        ).values_list("external_event_id", flat=True)
    return found


def events_removed_by_host(*, calendar: Calendar, event_ids: list[str], now: datetime) -> int:
    """Mark Baton's events among ``event_ids`` in ``calendar`` (not marked before) and tell people about the
    upcoming bookings among them. Returns how many events were marked."""
    marked: list[int] = []
    for i in range(0, len(event_ids), CHUNK):
        found = BookingEvent.objects.filter(
            calendar=calendar,
            state=BookingEvent.State.ACTIVE,
            external_event_id__in=event_ids[i : i + CHUNK],
            host_removed_at__isnull=True,
        ).values_list("pk", flat=True)
        ids = list(found)
        if ids:
            BookingEvent.objects.filter(pk__in=ids).update(host_removed_at=now)
            marked += ids
    if marked:
        _alert(marked, now=now)
    return len(marked)


def events_missing_from_full_sync(
    *,
    calendar: Calendar,
    listed: set[str],
    window: tuple[datetime, datetime],
    listed_at: datetime,
    now: datetime,
) -> int:
    """Mark Baton's events of upcoming confirmed bookings inside the full sync's ``window`` whose ids the
    sync did not list (busy or not: ``listed`` is every id it saw). Events written or rewritten since the
    listing began (``listed_at``) are left for the next sync: the listing may have been made before them."""
    ids = (
        BookingEvent.objects.filter(
            calendar=calendar,
            state=BookingEvent.State.ACTIVE,
            host_removed_at__isnull=True,
            updated_at__lt=listed_at,
            booking__status=Booking.Status.CONFIRMED,
            booking__end__gt=now,
            booking__start__gte=window[0],
            booking__end__lte=window[1],
        )
        .exclude(external_event_id="")
        .values_list("external_event_id", flat=True)
    )
    missing = [event_id for event_id in ids if event_id not in listed]
    return events_removed_by_host(calendar=calendar, event_ids=missing, now=now) if missing else 0


def _alert(event_ids: list[int], *, now: datetime) -> None:
    events = list(
        BookingEvent.objects.filter(
            pk__in=event_ids,
            booking__status=Booking.Status.CONFIRMED,
            booking__end__gt=now,
            booking__hosts__rep_id=F("rep_id"),  # still hosting it
            booking__hosts__active=True,
        )
        .select_related("booking__meeting_type", "rep")
        .order_by("booking__start")
    )
    if not events:
        return
    rep = events[0].rep
    lines = [
        f"- {e.booking.meeting_type.title} with {e.booking.prospect_name}, "
        f"{e.booking.start:%Y-%m-%d %H:%M} UTC: "
        f"{absolute_url('admin:booking_booking_change', args=[e.booking_id])}"
        for e in events
    ]
    logger.warning("rep %s removed %s upcoming Baton meeting(s) from their calendar", rep.pk, len(events))
    subject = f"Baton: {rep.name} removed {len(events)} upcoming meeting(s) from their calendar"
    body = (
        f"{rep.name} <{rep.email}> deleted these meetings from their calendar. The bookings still stand and "
        "the prospects will come: reassign or cancel them.\n\n" + "\n".join(lines)
    )
    if settings.CALENDAR_ALERT_EMAILS:
        send_mail(subject, body, None, settings.CALENDAR_ALERT_EMAILS, fail_silently=True)
    else:
        mail_admins(subject, body, fail_silently=True)
