"""Typed calendar errors with stable codes. Messages never contain tokens or feed URLs."""

from __future__ import annotations


class CalendarError(Exception):
    code = "calendar_error"

    def __init__(self, message: str = "", **details):
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.details = details

    @property
    def message(self) -> str:
        return str(self.args[0])


class TokenKeyMissing(CalendarError):
    """No TOKEN_ENCRYPTION_KEYS configured: Baton refuses to store calendar credentials unencrypted."""

    code = "token_key_missing"


class TokenDecryptFailed(CalendarError):
    """Stored credentials cannot be decrypted with any configured key (was a key removed too early?)."""

    code = "token_decrypt_failed"


class ProviderNotConfigured(CalendarError):
    """This calendar provider has no client id/secret configured."""

    code = "provider_not_configured"


class ClientRefused(CalendarError):
    """The provider refuses Baton's own OAuth client (``invalid_client``: a wrong or rotated client secret,
    a deleted app registration): an admin's setting to fix, not the reps' grants. Syncs fail (and are
    shown as failing) without disconnecting anyone: reconnecting would not help."""

    code = "client_refused"


class GrantRevoked(CalendarError):
    """The calendar account's grant was revoked or has expired: the rep must reconnect."""

    code = "grant_revoked"


class AccountInUse(CalendarError):
    """This Google / Microsoft account is connected by another rep: one account belongs to one rep (another
    rep's bookings would be written into it with its owner as organiser, and would not block its owner)."""

    code = "account_in_use"


class ProviderUnavailable(CalendarError):
    """The provider did not answer in time, failed, or refused the request."""

    code = "provider_unavailable"

    def __init__(self, message: str = "", *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message, retry_after=retry_after, status=status)
        self.retry_after = retry_after
        self.status = status


class EventGone(CalendarError):
    """The event to update is no longer in the calendar (its owner deleted it): write it anew."""

    code = "event_gone"


class CalendarGone(CalendarError):
    """The provider does not find the calendar (Graph 404 ``ErrorItemNotFound``, Google 404 ``notFound``):
    its owner deleted it, or the account lost access to it. The account's calendar list is read again to
    confirm it, and the calendar is removed from Baton with its busy times (``calendars.services.sync``)."""

    code = "calendar_gone"


class SyncStateExpired(CalendarError):
    """The provider no longer accepts the stored sync cursor (Google 410, Graph syncStateNotFound)."""

    code = "sync_state_expired"


class ReadOnlyCalendar(CalendarError):
    """ICS feeds are read-only: events cannot be written, and they have no push notifications."""

    code = "read_only"


class InvalidFeed(CalendarError):
    """The ICS URL is not acceptable or does not serve an iCalendar feed."""

    code = "invalid_feed"


class OAuthStateMismatch(CalendarError):
    """The OAuth callback does not belong to the connect attempt started in this session."""

    code = "oauth_state_mismatch"


class CalendarWriteFailed(CalendarError):
    """Writing a booking into one or more host calendars failed; the outbox retries it.

    ``retry_after``: the longest wait (seconds) a failing host's provider asked for (``Retry-After``), or
    ``None``; the booking outbox schedules its next attempt no sooner (``booking.outbox``)."""

    code = "calendar_write_failed"

    def __init__(self, message: str = "", *, retry_after: float | None = None, **details):
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after
