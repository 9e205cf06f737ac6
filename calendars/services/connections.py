"""Connecting, listing, configuring and disconnecting calendar accounts."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calendars.crypto import decrypt_secrets, encrypt_secrets
from calendars.errors import CalendarError, GrantRevoked, ReadOnlyCalendar
from calendars.models import BookingEvent, BusyInterval, Calendar, CalendarConnection
from calendars.providers import google_auth
from calendars.providers.base import CalendarProvider
from calendars.providers.google import GoogleProvider
from calendars.providers.ics import IcsProvider, feed_label, normalise_url
from calendars.providers.microsoft import MicrosoftProvider
from calendars.services.accounts import account_key, connection_find, xact_lock
from calendars.services.history import busy_archive
from routing.models import Rep

logger = logging.getLogger("calendars")
Provider = CalendarConnection.Provider
Status = CalendarConnection.Status
PROVIDER_CLASSES = {
    Provider.GOOGLE: GoogleProvider,
    Provider.MICROSOFT: MicrosoftProvider,
    Provider.ICS: IcsProvider,
}
WRITABLE = (Provider.GOOGLE, Provider.MICROSOFT)
LIST_LOCK_CLASS = 0x43414C53  # "CALS": advisory locks of a rep's calendar lists (_store_calendars)
LIST_FAILED = "The calendar list could not be read: "  # last_error of a failed listing (calendars_refresh)


def provider_for(
    connection: CalendarConnection,
    *,
    timeout: float | None = None,
    retries: int = 3,
    persist: bool = True,
    secrets: dict | None = None,
) -> CalendarProvider:
    """The provider client for ``connection``. Refreshed credentials are stored again (encrypted) when
    ``persist``; otherwise they are kept on ``provider.changed_secrets`` for the caller to store."""
    cls = PROVIDER_CLASSES[connection.provider]
    data = secrets if secrets is not None else decrypt_secrets(connection.secret_blob)
    kwargs = {"timeout": timeout, "retries": retries}
    if connection.provider in (Provider.ICS, Provider.MICROSOFT):  # all-day events are in the rep's zone
        kwargs["zone"] = ZoneInfo(connection.rep.timezone)
    if connection.provider == Provider.ICS:  # a feed has no "self" attendee: meetings the rep declined
        kwargs["emails"] = (connection.rep.email,)
    holder: dict = {}

    def on_change(new: dict) -> None:
        holder["secrets"] = new
        if persist:
            store_secrets(connection_id=connection.pk, secrets=new)

    provider = cls(data, on_secrets_changed=on_change, **kwargs)
    provider.changed_secrets = holder
    return provider


def store_secrets(*, connection_id: int, secrets: dict) -> None:
    CalendarConnection.objects.filter(pk=connection_id).update(secret_blob=encrypt_secrets(secrets))


@transaction.atomic
def connection_create(*, rep: Rep, provider: str, secrets: dict, account_email: str) -> CalendarConnection:
    """Store a new (or renewed) connection. Reconnecting the same account replaces its credentials and
    clears a ``disconnected`` status; its calendars and their choices are kept. A Google / Microsoft account
    another rep has connected is refused (``AccountInUse``): a shared browser signed in to a colleague's
    account would otherwise give this rep the colleague's calendar to book into. An account is known by its
    lasting id (``account_key``) when it has one: under a new sign-in name it is the same account (its
    address, and its event records', are updated), and another id is another account even under the same
    address (a work and a personal Microsoft account); without one (Google), by its address
    (``accounts.connection_find``)."""
    blob = encrypt_secrets(secrets)  # raises TokenKeyMissing before anything is written
    key = account_key(provider, secrets)
    existing = connection_find(rep=rep, provider=provider, secrets=secrets, account_email=account_email)
    if existing is not None:
        if account_email and existing.account_email != account_email:  # a new sign-in name
            _events_readdress(existing, account_email)
            existing.account_email = account_email
        existing.secret_blob, existing.status, existing.last_error = blob, Status.CONNECTED, ""
        existing.account_key = key or existing.account_key
        existing.save(update_fields=["secret_blob", "status", "last_error", "account_key", "account_email"])
        return existing
    return CalendarConnection.objects.create(
        rep=rep, provider=provider, secret_blob=blob, account_email=account_email, account_key=key
    )


def _events_readdress(connection: CalendarConnection, account_email: str) -> None:
    """The account's new sign-in name on the records of the events Baton wrote into it: those of its
    calendars, and the rep's orphans under its old address (their calendar left Baton for a while), which
    ``_events_reclaim`` looks for under the new address when the list brings their calendar back."""
    written = Q(calendar__connection=connection)
    if connection.account_email:
        written |= Q(
            rep_id=connection.rep_id,
            provider=connection.provider,
            calendar__isnull=True,
            account_email__iexact=connection.account_email,
        )
    BookingEvent.objects.filter(written).update(account_email=account_email)


def ics_connect(*, rep: Rep, url: str) -> CalendarConnection:
    """Check that ``url`` serves an iCalendar feed, then store it (encrypted) with one blocking calendar."""
    url = normalise_url(url)
    calendars = IcsProvider({"url": url}, zone=ZoneInfo(rep.timezone)).list_calendars()
    connection = connection_create(
        rep=rep, provider=Provider.ICS, secrets={"url": url}, account_email=feed_label(url)
    )
    _store_calendars(connection, calendars)
    CalendarConnection.objects.filter(pk=connection.pk).update(last_success_at=timezone.now())
    return connection


def calendars_refresh(*, connection_id: int) -> list[Calendar]:
    """List the account's calendars and mirror them: new ones are added (the primary one blocks
    availability and, if nothing else does, receives bookings), vanished ones are removed.

    A revoked grant disconnects the connection. Any other failure (the provider throttled, down or slow;
    credentials unreadable) is recorded on it: status ``error``, ``last_error`` in words, ``last_sync_at``
    the attempt (a connection never listed is listed again by the sweep, ``selectors.relist_due_ids``),
    then raised. A listing that succeeds again clears the error a failed listing recorded."""
    connection = CalendarConnection.objects.select_related("rep").get(pk=connection_id)
    try:
        remote = provider_for(connection).list_calendars()
    except GrantRevoked as exc:
        connection_mark_disconnected(connection_id=connection.pk, reason=exc.message)
        raise
    except CalendarError as exc:
        logger.warning("calendar list of connection %s failed: %s", connection.pk, exc.message)
        CalendarConnection.objects.filter(pk=connection.pk).exclude(status=Status.DISCONNECTED).update(
            status=Status.ERROR, last_error=(LIST_FAILED + exc.message)[:500], last_sync_at=timezone.now()
        )
        raise
    calendars = _store_calendars(connection, remote)
    listed = CalendarConnection.objects.filter(pk=connection.pk)
    listed.update(last_success_at=timezone.now())
    listed.filter(status=Status.ERROR, last_error__startswith=LIST_FAILED).update(
        status=Status.CONNECTED, last_error=""
    )
    return calendars


@transaction.atomic
def _store_calendars(connection: CalendarConnection, remote) -> list[Calendar]:
    """Mirror the listed calendars (``remote``, fetched before: no provider call while locked). Stores of
    one rep's connections take turns until commit: two refreshes at once (a double click, the rep's Refresh
    during the daily list refresh, a double-clicked feed) would otherwise both find a new calendar missing
    and both insert it, breaking ``calendar_unique_external``, and two accounts of the rep stored at once
    could each make their primary calendar the one receiving bookings. An advisory lock, not the row:
    ``calendar_roles_set`` locks the calendar rows together with their connection's, so locking the
    connection, then updating its calendars here could deadlock with it."""
    xact_lock(LIST_LOCK_CLASS, f"rep-{connection.rep_id}")
    existing = {c.external_id: c for c in connection.calendars.all()}
    has_receiver = Calendar.objects.filter(
        connection__rep_id=connection.rep_id, receives_bookings=True
    ).exists()
    seen = set()
    for item in remote:
        seen.add(item.external_id)
        cal = existing.get(item.external_id)
        if cal is None:
            receives = (
                item.is_primary and item.can_write and not has_receiver and connection.provider in WRITABLE
            )
            has_receiver = has_receiver or receives
            Calendar.objects.create(
                connection=connection,
                external_id=item.external_id,
                name=item.name[:300],
                timezone=item.timezone,
                is_primary=item.is_primary,
                can_write=item.can_write,
                online_meeting_providers=list(item.online_meeting_providers),
                blocks_availability=item.is_primary,
                receives_bookings=receives,
            )
        else:
            cal.name, cal.timezone, cal.is_primary = item.name[:300], item.timezone, item.is_primary
            cal.can_write, cal.online_meeting_providers = item.can_write, list(item.online_meeting_providers)
            cal.receives_bookings = cal.receives_bookings and item.can_write
            cal.save(
                update_fields=[
                    "name",
                    "timezone",
                    "is_primary",
                    "can_write",
                    "online_meeting_providers",
                    "receives_bookings",
                ]
            )
    for external_id, cal in existing.items():
        if external_id not in seen:
            if cal.watch_channel_id:  # stopped once the list is stored (no provider call in the transaction)
                transaction.on_commit(partial(_watch_stop_quietly, cal))
            cal.delete()  # its busy rows go with it (signals)
    calendars = list(connection.calendars.all())
    _events_reclaim(connection, calendars)
    return calendars


def _events_reclaim(connection: CalendarConnection, calendars: list[Calendar]) -> None:
    """Events Baton wrote into a calendar of this account before the rep removed it (or the calendar left
    the account's list) lost their calendar row: link them to the calendar again, so that the booking's
    next change (or ``connection_events_resync``) updates or cancels them instead of writing a second one."""
    by_external = {c.external_id: c.pk for c in calendars}
    orphans = BookingEvent.objects.filter(
        rep_id=connection.rep_id,
        calendar__isnull=True,
        provider=connection.provider,
        account_email=connection.account_email,
        calendar_external_id__in=list(by_external),
    ).exclude(account_email="")
    for pk, external_id in orphans.values_list("pk", "calendar_external_id"):
        BookingEvent.objects.filter(pk=pk, calendar__isnull=True).update(calendar_id=by_external[external_id])


@transaction.atomic
def calendar_roles_set(*, rep: Rep, blocking_ids: set[int], receiving_id: int | None) -> list[int]:
    """Choose which of the rep's calendars block availability and which one receives bookings.
    Returns the ids of calendars that now need a sync. Calendars that stop blocking lose their busy rows."""
    calendars = list(
        Calendar.objects.select_for_update().filter(connection__rep=rep).select_related("connection")
    )
    by_id = {c.pk: c for c in calendars}
    unknown = (set(blocking_ids) | ({receiving_id} if receiving_id else set())) - set(by_id)
    if unknown:
        raise CalendarError("Unknown calendar.")
    if receiving_id is not None:
        target = by_id[receiving_id]
        if target.connection.provider not in WRITABLE or not target.can_write:
            raise ReadOnlyCalendar(
                "Bookings can only be written to a Google or Microsoft calendar you can edit."
            )
    to_sync = []
    for cal in calendars:
        blocks, receives = cal.pk in blocking_ids, cal.pk == receiving_id
        if blocks and not cal.blocks_availability:
            to_sync.append(cal.pk)
        if not blocks and cal.blocks_availability:
            calendar_busy_clear(calendar=cal)
        if (blocks, receives) != (cal.blocks_availability, cal.receives_bookings):
            Calendar.objects.filter(pk=cal.pk).update(blocks_availability=blocks, receives_bookings=receives)
    return to_sync


def calendar_busy_clear(*, calendar: Calendar) -> None:
    """Forget a calendar's synced busy times and cursor (it stopped blocking, or it is being removed)."""
    rows = BusyInterval.objects.filter(
        rep_id=calendar.connection.rep_id, external_id__startswith=calendar.busy_prefix
    )
    busy_archive(rows)
    rows.delete()
    Calendar.objects.filter(pk=calendar.pk).update(sync_state="", window_end=None, last_synced_at=None)


def _watch_stop_quietly(cal: Calendar) -> None:
    """Stop a calendar's push channel, best effort (a calendar leaving the list or Baton: its channel would
    go on pushing, unknown, for days)."""
    from calendars.services.watches import watch_stop  # watches imports this module

    try:
        watch_stop(calendar=cal)
    except CalendarError as exc:
        logger.info("could not stop push channel %s: %s", cal.watch_channel_id, exc.code)
    except Exception:  # an unforeseen answer must not keep the calendar (or the rep's account) in Baton
        logger.exception("could not stop push channel %s", cal.watch_channel_id)


def connection_delete(*, connection: CalendarConnection) -> None:
    """Disconnect: stop push channels (best effort), then drop the connection, its calendars and busy rows;
    once that is committed, hand a Google grant back to Google (best effort too: Baton lets go of the
    account, its refresh token stops working even in old database backups). Microsoft has no revocation of
    one app's grant (the account's owner removes Baton in their account's app list): its token cache goes
    with the row."""
    if connection.provider in WRITABLE and connection.status != Status.DISCONNECTED:
        for cal in connection.calendars.exclude(watch_channel_id=""):
            _watch_stop_quietly(cal)
    grant = _google_grant(connection)
    pk = connection.pk
    connection.delete()
    if grant:  # not inside the caller's transaction (the admin's delete): a slow Google holds no locks
        transaction.on_commit(partial(_grant_revoke_quietly, pk, grant))


def _google_grant(connection: CalendarConnection) -> str:
    """The token that revokes a Google connection's grant (its refresh token); "" for other providers or
    when the stored credentials cannot be read (the rep can still remove Baton in their Google account)."""
    if connection.provider != Provider.GOOGLE:
        return ""
    try:
        secrets = decrypt_secrets(connection.secret_blob)
    except CalendarError as exc:
        logger.info("cannot revoke the Google grant of connection %s: %s", connection.pk, exc.code)
        return ""
    return secrets.get("refresh_token") or secrets.get("token") or ""


def _grant_revoke_quietly(connection_id: int, token: str) -> None:
    try:
        google_auth.revoke_grant(token)
    except CalendarError as exc:
        logger.info("could not revoke the Google grant of connection %s: %s", connection_id, exc.message)
    except Exception:  # an unforeseen answer must not turn the finished disconnect into an error page
        logger.exception("could not revoke the Google grant of connection %s", connection_id)


def calendar_delete(*, calendar: Calendar) -> None:
    """Remove one calendar (the admin's delete) as Disconnect removes an account's: its push channel
    stopped first (best effort), then the row and its busy rows (signals). The next refresh of the
    calendar list brings it back while it is still in the account."""
    if calendar.watch_channel_id and calendar.connection.status != Status.DISCONNECTED:
        _watch_stop_quietly(calendar)
    calendar.delete()


def connection_mark_disconnected(*, connection_id: int, reason: str) -> bool:
    """The grant is gone: mark the connection, withhold the rep (selectors) and tell people once.

    People told: a WARNING log line always; an email to CALENDAR_ALERT_EMAILS (or Django's ADMINS when that
    is empty) and to the rep, asking them to reconnect. Returns False when it was already disconnected.
    """
    now = timezone.now()
    changed = (
        CalendarConnection.objects.filter(pk=connection_id)
        .filter(~Q(status=Status.DISCONNECTED))
        .update(status=Status.DISCONNECTED, last_error=reason[:500], last_sync_at=now)
    )
    if not changed:
        return False
    connection = CalendarConnection.objects.select_related("rep").get(pk=connection_id)
    rep = connection.rep
    logger.warning(
        "calendar connection %s (%s) of rep %s disconnected: %s; the rep is withheld until they reconnect",
        connection.pk,
        connection.provider,
        rep.pk,
        reason,
    )
    subject = f"Baton: {rep.name}'s {connection.get_provider_display()} calendar needs reconnecting"
    body = (
        f"{rep.name} <{rep.email}> is no longer offered on booking pages: {reason}\n\n"
        f"Reconnect at {settings.BASE_URL}/calendars/"
    )
    if settings.CALENDAR_ALERT_EMAILS:
        send_mail(subject, body, None, settings.CALENDAR_ALERT_EMAILS, fail_silently=True)
    else:
        mail_admins(subject, body, fail_silently=True)
    send_mail(subject, body, None, [rep.email], fail_silently=True)
    return True


def relist_claim(*, now: datetime) -> list[int]:
    """Connections never listed that are due another listing (``selectors.relist_due_ids``), stamped as
    attempted now (``last_sync_at``): the back-off counts from this attempt whatever its outcome (a listing
    that dies without a ``CalendarError`` is not queued again at every sweep)."""
    from calendars.selectors import relist_due_ids

    ids = relist_due_ids(now=now)
    CalendarConnection.objects.filter(pk__in=ids, last_success_at__isnull=True).update(last_sync_at=now)
    return ids


def sync_failure_record(*, calendar_id: int, message: str, retry_not_before: datetime | None = None) -> None:
    """A failed sync: the calendar's and connection's ``last_error``, the connection ``error``; with
    ``retry_not_before`` (the provider's ``Retry-After``) no sync is sent before it (``calendar_sync``)."""
    now = timezone.now()
    calendar = Calendar.objects.filter(pk=calendar_id).select_related("connection").first()
    if calendar is None:
        return
    Calendar.objects.filter(pk=calendar_id).update(
        last_error=message[:500], last_attempt_at=now, retry_not_before=retry_not_before
    )
    CalendarConnection.objects.filter(pk=calendar.connection_id).exclude(status=Status.DISCONNECTED).update(
        status=Status.ERROR, last_error=message[:500], last_sync_at=now
    )
