"""Calendar write handlers for the booking outbox.

The booking outbox delivers a message for every booking change and retries a handler until it returns
without raising. All three kinds call the same reconciliation (``services.writeback.booking_events_sync``),
which compares the booking with what was written and creates, updates or cancels host events; it is
idempotent, so a retry after a partial failure finishes the job without duplicating anything.

Payload: a dict with ``booking_id`` (an int, or a string of digits). ``CalendarWriteFailed`` (raised when
any host's calendar could not be written) means "retry later".
"""

from __future__ import annotations

from calendars.errors import CalendarError
from calendars.services.writeback import booking_events_sync

KINDS = ("booking.confirmed", "booking.rescheduled", "booking.cancelled")


def write_booking_to_calendars(payload: dict) -> dict[int, str]:
    """Outbox handler for every kind in ``KINDS``. Returns {rep id: what happened} for the outbox log."""
    try:
        booking_id = int(payload["booking_id"])
    except (KeyError, TypeError, ValueError):
        raise CalendarError("calendar write message without a valid booking_id") from None
    return booking_events_sync(booking_id=booking_id)


def register(register_handler) -> None:
    """Register the handler with the booking outbox's registry: ``register_handler(kind, handler)``."""
    for kind in KINDS:
        register_handler(kind, write_booking_to_calendars)
