"""Typed domain errors of the booking API, each with a stable ``code`` and an HTTP status.

``booking.api.errors.exception_handler`` renders every one of them as
``{"code": <code>, "detail": <message>, ...extra}``. Codes are part of the public API (docs/booking-api.md).
"""

from __future__ import annotations

from typing import Any


class BookingError(Exception):
    code = "booking_error"
    status = 400
    default_detail = "The request could not be completed."

    def __init__(self, detail: str | None = None, **extra: Any):
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class InvalidInput(BookingError):
    """Field-level validation failure: ``errors`` maps field names to lists of messages."""

    code = "invalid"
    status = 400
    default_detail = "Invalid input."

    def __init__(self, errors: dict[str, Any], detail: str | None = None):
        super().__init__(detail, errors=errors)


class MeetingTypeNotFound(BookingError):
    code = "not_found"
    status = 404
    default_detail = "No such meeting type."


class BookingNotFound(BookingError):
    code = "not_found"
    status = 404
    default_detail = "No such booking."


class SlotUnavailable(BookingError):
    """Nobody can host at that start (taken meanwhile); ``alternatives`` are the next offered starts."""

    code = "slot_unavailable"
    status = 409
    default_detail = "That time is no longer available."

    def __init__(self, detail: str | None = None, *, alternatives: list[str] | None = None):
        super().__init__(detail, alternatives=alternatives or [])


class TryAgain(BookingError):
    """The hosts were locked by other bookings for longer than BOOKING_LOCK_TIMEOUT_MS (or a deadlock)."""

    code = "try_again"
    status = 409
    default_detail = "Too many bookings for these hosts right now; please try again."


class ServiceUnavailable(BookingError):
    """The database went away or takes no writes for now (a failover, a restart, a full disk): nothing was
    booked or changed, and the same request may be sent again after ``retry_after`` seconds (the
    ``Retry-After`` header). Raised by the API's exception handler for such a database error."""

    code = "unavailable"
    status = 503
    default_detail = "The service is briefly unavailable; nothing was changed. Please try again shortly."
    retry_after = 5  # seconds: a failover or a restart takes a few


class BookingNotActive(BookingError):
    code = "booking_not_active"
    status = 409
    default_detail = "This booking is not active."


class BookingAlreadyCancelled(BookingNotActive):
    code = "booking_already_cancelled"
    default_detail = "This booking is already cancelled."


class BookingStillActive(BookingError):
    """A confirmed booking that has not ended cannot be deleted; it is cancelled instead."""

    code = "booking_still_active"
    status = 409
    default_detail = "This booking is confirmed and has not ended yet: cancel it instead."


class BookingChangesPending(BookingError):
    """A booking whose emails or calendar updates are not delivered yet cannot be deleted: the calendar
    writes need it (and its event records) to find what to change."""

    code = "booking_changes_pending"
    status = 409
    default_detail = (
        "This booking's emails or calendar updates are still being delivered: delete it once they are."
    )


class BookingInPast(BookingError):
    code = "booking_in_past"
    status = 409
    default_detail = "This booking has already started."


class BookingNotStarted(BookingError):
    """An outcome can only be recorded once the meeting has started."""

    code = "booking_not_started"
    status = 409
    default_detail = "This booking has not started yet; record its outcome afterwards."


class IdempotencyConflict(BookingError):
    code = "idempotency_key_reused"
    status = 422
    default_detail = "This Idempotency-Key was already used with a different request body."


class ReassignNotPossible(BookingError):
    code = "reassign_not_possible"
    status = 409
    default_detail = "The booking cannot be reassigned to that member."


class BookingChanged(BookingError):
    """(admin) The booking changed (rescheduled, reassigned, cancelled: its ``sequence`` moved on) since the
    page that asks for the change was opened: nothing was changed; the page is to be reloaded."""

    code = "booking_changed"
    status = 409
    default_detail = "This booking changed since you opened this page; reload it."


class OutcomeAlreadyRecorded(BookingError):
    """(admin) A bulk outcome found an outcome recorded (looked up under the booking's row lock) and left it
    as it is; ``kind`` is the recorded one. A booking's own page replaces an outcome."""

    code = "outcome_already_recorded"
    status = 409
    default_detail = "An outcome is already recorded for this booking."

    def __init__(self, kind: str):
        super().__init__(f"Already recorded as {kind}.", kind=kind)
        self.kind = kind
