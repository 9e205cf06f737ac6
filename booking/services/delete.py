"""Deleting bookings (the admin's delete button and its "delete selected" action).

A deletion erases a booking as if it had never been made: its host rows (so the hosts' fairness tallies
drop), its outcome, its calendar-event records and its ledger entries go with it; the admin's log keeps who
deleted what. It is for bookings that are over (held, no-show, cancelled) or should never have been made
(spam, tests). A confirmed booking that has not ended yet is refused: cancelling it is what tells the
prospect and the hosts and removes the events from their calendars. So is one whose outbox messages are not
delivered yet (after a cancellation, say): the calendar writes read the booking and its event records to
find the events to remove, and would fail for good without them. So is a cancelled booking, not over yet,
whose event is still in a host's calendar: its write-back left it "pending" (the host's grant was revoked,
or the account removed from Baton) until the host reconnects, when ``connection_events_resync`` removes it
by its record; deleted now, the cancelled meeting stayed in the host's calendar (and the prospect's, whom
the provider invited) for good. That wait ends at the meeting's end at the latest: the resync leaves the
events of bookings that are over alone, so deleting one then loses nothing.

Like every other change of a booking it locks the booking rows, then their hosts' reps (sorted: see
``locking.lock_reps``), since the tally trigger moves their tallies row by row; a lock held past
``BOOKING_LOCK_TIMEOUT_MS`` answers ``TryAgain`` with nothing deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone as dj_timezone

from booking.errors import BookingChangesPending, BookingStillActive
from booking.models import Booking, BookingHost, OutboxMessage
from booking.services import locking


def still_active(booking: Booking, *, now: datetime) -> bool:
    """Confirmed and not ended yet: to be cancelled, not deleted."""
    return booking.status == Booking.Status.CONFIRMED and booking.end > now


def events_awaiting_removal(booking_ids: list[int], *, now: datetime) -> QuerySet:
    """The calendar events of these bookings that their hosts' calendars still hold (or may hold: a create
    never answered) though the booking was cancelled, which a reconnect is still to remove."""
    from calendars.models import BookingEvent  # calendars imports booking

    return BookingEvent.objects.filter(
        booking_id__in=booking_ids,
        booking__status=Booking.Status.CANCELLED,
        booking__end__gt=now,
        state__in=(BookingEvent.State.ACTIVE, BookingEvent.State.CREATING),
    ).select_related("rep")


def bookings_delete(*, booking_ids: Iterable[int], now: datetime | None = None) -> int:
    """Delete the bookings ``booking_ids`` (those that still exist) and what belongs to them, in one
    transaction (a savepoint inside the admin's own). Returns how many were deleted. Raises
    ``BookingStillActive`` (nothing deleted) if one of them is confirmed and not over yet,
    ``BookingChangesPending`` if one has outbox messages not delivered yet or is a cancelled one whose event
    a host's calendar still holds (``events_awaiting_removal``), ``TryAgain`` if their hosts stay locked by
    other bookings."""
    now = now or dj_timezone.now()
    ids = sorted(set(booking_ids))

    def run() -> int:
        with locking.change(durable=False):
            bookings = list(Booking.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
            found = [b.pk for b in bookings]
            pending = OutboxMessage.objects.filter(booking_id__in=found, status=OutboxMessage.Status.PENDING)
            waiting = set(pending.values_list("booking_id", flat=True))
            held = {}
            for event in events_awaiting_removal(found, now=now):
                held.setdefault(event.booking_id, []).append(event.rep.name)
            for booking in bookings:
                if still_active(booking, now=now):
                    raise BookingStillActive(
                        f"{booking} is confirmed and has not ended yet: cancel it instead, so that the "
                        "prospect and the hosts are told and the calendar events are removed."
                    )
                if booking.pk in waiting:
                    raise BookingChangesPending(
                        f"{booking}: its emails or calendar updates are still being delivered (see the "
                        "outbox); delete it once they are."
                    )
                if booking.pk in held:
                    raise BookingChangesPending(
                        f"{booking}: this cancelled meeting is still in the calendar of "
                        f"{', '.join(sorted(held[booking.pk]))}, to be removed when their calendar is "
                        "reconnected (see Calendar connections); deleting the booking now would leave it "
                        "there for good. Delete it once the event is removed, or once the meeting's time "
                        "is over."
                    )
            locking.lock_reps(
                BookingHost.objects.filter(booking_id__in=found).values_list("rep_id", flat=True)
            )
            # its delivered messages hold the prospect's name, e-mail and answers: they go with it (the
            # link alone was cleared, and the outbox page kept showing them)
            OutboxMessage.objects.filter(booking_id__in=found).delete()
            Booking.objects.filter(pk__in=found).delete()
            return len(found)

    return locking.conflicts(run)
