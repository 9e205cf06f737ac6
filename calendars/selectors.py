"""Read-side queries about reps' calendars used by routing and booking."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from calendars.models import BookingEvent, Calendar, CalendarConnection

Provider = CalendarConnection.Provider
Status = CalendarConnection.Status
WRITABLE = (Provider.GOOGLE, Provider.MICROSOFT)


def withheld_rep_ids(rep_ids: Iterable[int], *, now: datetime) -> set[int]:
    """Reps whose availability cannot be trusted right now and who must not be offered.

    A rep is withheld when Baton can no longer see their busy time:
    * a connection whose grant was revoked or expired (status ``disconnected``);
    * a connection that never completed a first listing/sync (``last_success_at`` empty);
    * a calendar that blocks availability and has not synced successfully within
      ``CALENDAR_STALENESS_MINUTES`` (or never has).
    Reps with no connected calendar are judged by the busy times entered in Baton alone and are never
    withheld here. Two queries, whatever the number of reps.
    """
    ids = set(rep_ids)
    if not ids:
        return set()
    cutoff = now - timedelta(minutes=settings.CALENDAR_STALENESS_MINUTES)
    by_connection = CalendarConnection.objects.filter(rep_id__in=ids).filter(
        Q(status=Status.DISCONNECTED) | Q(last_success_at__isnull=True)
    )
    by_calendar = Calendar.objects.filter(connection__rep_id__in=ids, blocks_availability=True).filter(
        Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=cutoff)
    )
    return set(by_connection.values_list("rep_id", flat=True)) | set(
        by_calendar.values_list("connection__rep_id", flat=True)
    )


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


def booking_join_url(booking_id: int) -> str:
    """The video link the provider created for a booking (lead host's event), or "" when there is none yet."""
    event = (
        BookingEvent.objects.filter(booking_id=booking_id, state=BookingEvent.State.ACTIVE)
        .exclude(join_url="")
        .order_by("pk")
        .first()
    )
    return event.join_url if event else ""


def rep_connections(rep_id: int):
    return (
        CalendarConnection.objects.filter(rep_id=rep_id)
        .prefetch_related("calendars")
        .order_by("provider", "account_email", "pk")
    )
