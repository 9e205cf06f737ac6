"""Write paths of the booking app (keyword-only services; see each module)."""

from booking.services.create import CreateResult, booking_create, booking_replay
from booking.services.delete import bookings_delete
from booking.services.manage import booking_cancel, booking_reschedule
from booking.services.outcomes import booking_outcome_record
from booking.services.reassign import booking_reassign, booking_set_outcome

__all__ = [
    "CreateResult",
    "booking_cancel",
    "booking_create",
    "booking_replay",
    "booking_outcome_record",
    "booking_reassign",
    "booking_reschedule",
    "booking_set_outcome",
    "bookings_delete",
]
