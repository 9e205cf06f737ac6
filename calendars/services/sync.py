"""Syncing busy times from providers into BusyInterval rows.

One calendar at a time, under a database lease (``sync_lease_until``) so two workers never sync the same
calendar at once. ``sync_requested_at`` collapses repeated push notifications: a request while one is
queued is absorbed; the flag is cleared when the sync starts, so a change notified during a running sync
gets one more sync (queued by the running one when it ends, since the notification's own task may find
the lease held and give up). Failures keep the last synced busy times (the staleness bound in
``selectors.withheld_rep_ids`` decides when they are too old); a revoked grant disconnects the connection.
A database error during a sync (a write refused: disk full, a lock or statement timeout) is a failed sync
too, recorded once the failed statement or block is rolled back; with the database itself gone (the
connection lost or never made) nothing can be recorded, and the error is raised for the task to log.

A provider that throttles a sync and says how long to wait (``Retry-After``, read as seconds or a date by
``providers.pushback``; ``ProviderUnavailable.retry_after``) is left alone that long, at most an hour
(``booking.outbox_waits.asked_wait``, as the outbox waits): the calendar's ``retry_not_before`` is set, and a
sync asked for before it (a push notification, a roles change) is ``deferred`` without calling the provider;
its request stays flagged (absorbing further pushes) and the periodic sweep (``due_calendar_ids``) queues it
once the pause is over. The pause counts from the refusal, which may come long after the sync began (the
provider's shorter waits are waited out in the worker first).

A calendar the provider no longer finds (``CalendarGone``: its owner deleted it) is checked against the
account's calendar list (``calendar_gone_confirm``): gone from it, it is removed from Baton with its busy
times, as the daily list refresh would; still listed, the sync failed as any other.

The stored ``sync_state`` is the provider's cursor with the rep's time zone it was read in (``zone=<key>``
and a newline first): all-day events (and an ICS feed's floating times) are converted to instants in that
zone, and an incremental sync only reports events that changed, so a sync finding the rep's zone changed
(whichever way it was changed: the admin, a config import, a bulk update) syncs in full. A state stored
before the zone was recorded is taken as read in the current zone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from booking.outbox_waits import asked_wait
from calendars.errors import CalendarError, CalendarGone, GrantRevoked
from calendars.models import BusyInterval, Calendar, CalendarConnection
from calendars.providers.base import SyncResult
from calendars.services.connections import (
    calendars_refresh,
    connection_mark_disconnected,
    provider_for,
    sync_failure_record,
)
from calendars.services.history import busy_archive
from calendars.services.removed import (
    events_missing_from_full_sync,
    events_removed_by_host,
    own_events_among,
)

logger = logging.getLogger("calendars")
Provider = CalendarConnection.Provider
Status = CalendarConnection.Status

LEASE = timedelta(minutes=10)
LOST_REQUEST = timedelta(minutes=10)
PAST = timedelta(days=1)
ROLL_EVERY = timedelta(days=7)
CHUNK = 500
ZONE_TAG = "zone="  # sync_state: "zone=<the rep's zone>\n<the provider's cursor>"


def sync_window(now: datetime) -> tuple[datetime, datetime]:
    return now - PAST, now + timedelta(days=settings.CALENDAR_SYNC_HORIZON_DAYS)


def request_sync(*, calendar_id: int, now: datetime | None = None) -> bool:
    """Ask for a sync of one calendar. Returns False when one is already queued (the request is absorbed)."""
    now = now or timezone.now()
    queued = Calendar.objects.filter(pk=calendar_id, sync_requested_at__isnull=True).update(
        sync_requested_at=now
    )
    if queued:
        transaction.on_commit(lambda: _enqueue(calendar_id))
    return bool(queued)


def _enqueue(calendar_id: int) -> None:
    from calendars.tasks import enqueue, sync_calendar_task

    enqueue(sync_calendar_task, calendar_id)  # broker down: the periodic sweep re-queues requests never run


def calendar_sync(*, calendar_id: int, now: datetime | None = None, force_full: bool = False) -> str:
    """Sync one calendar. Returns what happened: full, incremental, unchanged, busy (another sync holds
    the lease), deferred (the provider asked to wait until ``retry_not_before``: nothing is sent, the
    request stays queued for the sweep), skipped, disconnected, removed (the provider no longer finds the
    calendar, nor lists it: removed from Baton) or failed."""
    now = now or timezone.now()
    calendar = Calendar.objects.filter(pk=calendar_id)
    leased = (
        calendar.filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .filter(Q(retry_not_before__isnull=True) | Q(retry_not_before__lte=now))
        .update(sync_lease_until=now + LEASE, sync_requested_at=None, retry_not_before=None)
    )
    if not leased:
        return "deferred" if calendar.filter(retry_not_before__gt=now).exists() else "busy"
    held = {"lease": True}
    try:
        return _sync_leased(calendar_id, now, force_full, held)
    except DatabaseError as exc:
        return _database_failure(calendar_id, exc, held)
    finally:
        # with the database gone there is nothing to release with: the lease lapses after LEASE, and the
        # error is raised as it was, not hidden behind a second one from these queries
        if held["lease"] and not held.get("gone"):
            Calendar.objects.filter(pk=calendar_id).update(sync_lease_until=None)
        # asked again while this sync ran (the flag was cleared when it began): that request's task may
        # have found the lease held and returned "busy", and the flag absorbs every request after it, so
        # queue one more sync (if that task has not run yet, one of the two finds little to do)
        if (
            not held.get("gone")
            and Calendar.objects.filter(pk=calendar_id, sync_requested_at__isnull=False).exists()
        ):
            _enqueue(calendar_id)


def _database_failure(calendar_id: int, exc: DatabaseError, held: dict) -> str:
    """A database error during the sync: recorded as a failed sync (calendar ``last_error``, connection
    ``error``, as for a provider that fails), in a transaction of its own. The statement or ``atomic`` block
    that failed has been rolled back by the time the error reaches here (each statement outside a block is
    its own transaction; after a failed block's rollback Django may have connected again). Raised again when
    nothing can be recorded: the connection is lost and not made again, or was never made (the database is
    gone: the task fails with the error in its log, and a poll syncs again once the lease lapses), or the
    caller's own transaction holds this sync (it must roll back; a write in it would be lost with it)."""
    raw = db_connection.connection
    if raw is None or getattr(raw, "closed", False) or getattr(raw, "broken", False):
        held["gone"] = True
        raise exc
    if db_connection.in_atomic_block:
        raise exc
    logger.error("sync of calendar %s: database error", calendar_id, exc_info=exc)
    message = f"The sync could not be saved: database error ({exc.__class__.__name__}); the error is logged."
    sync_failure_record(calendar_id=calendar_id, message=message)
    return "failed"


def _sync_leased(calendar_id: int, now: datetime, force_full: bool, held: dict) -> str:
    cal = Calendar.objects.select_related("connection__rep").get(pk=calendar_id)
    connection = cal.connection
    if connection.status == Status.DISCONNECTED or not cal.blocks_availability:
        return "skipped"
    window = sync_window(now)
    read_in, state = cursor_read(cal.sync_state)
    listed_at = timezone.now()
    try:
        zone = ZoneInfo(connection.rep.timezone)
        if force_full or cal.window_end is None or cal.window_end < window[1] - ROLL_EVERY:
            state = ""  # first sync, or the window needs rolling forward
        if read_in not in (None, zone.key):
            state = ""  # the rep's zone changed: all-day events are days in the new one
        provider = provider_for(connection)
        result = provider.sync(cal.external_id, state, window=window, zone=zone)
        if result.removed:  # Baton's own events among them, once the provider confirms them gone
            own = own_events_among(calendar=cal, event_ids=result.removed)
            result.removed = provider.confirm_removed(cal.external_id, own) if own else []
    except GrantRevoked as exc:
        Calendar.objects.filter(pk=cal.pk).update(last_error=exc.message[:500], last_attempt_at=now)
        connection_mark_disconnected(connection_id=connection.pk, reason=exc.message)
        return "disconnected"
    except CalendarError as exc:
        if isinstance(exc, CalendarGone) and calendar_gone_confirm(calendar=cal):
            return "removed"
        logger.warning("sync of calendar %s (%s) failed: %s", cal.pk, connection.provider, exc.message)
        refused_at = now + (timezone.now() - listed_at)  # after the provider's own retries and waits
        pause_end = _pause_end(exc, refused_at)
        sync_failure_record(calendar_id=cal.pk, message=exc.message, retry_not_before=pause_end)
        return "failed"
    except (ValueError, TypeError, KeyError, OverflowError) as exc:  # data the provider code cannot read
        logger.exception("sync of calendar %s (%s): unreadable answer", cal.pk, connection.provider)
        message = f"The calendar's data could not be read ({exc.__class__.__name__}); the error is logged."
        sync_failure_record(calendar_id=cal.pk, message=message)
        return "failed"
    if busy_apply(calendar=cal, result=result, window=window) is None:
        return "skipped"  # disconnected, removed or no longer blocking while the provider answered
    if result.removed:
        events_removed_by_host(calendar=cal, event_ids=result.removed, now=now)
    if result.full and not result.unchanged:  # deleted events are not listed: Baton's that are missing
        listed = {e.external_id for e in result.upserts} | set(result.deletions)
        events_missing_from_full_sync(
            calendar=cal, listed=listed, window=window, listed_at=listed_at, now=now
        )
    updates = {
        "sync_state": cursor_stored(result.next_state, zone),
        "last_synced_at": now,
        "last_attempt_at": now,
        "last_error": result.warning[:500],
        "sync_lease_until": None,  # released with the same UPDATE
    }
    if result.full:
        updates["window_end"] = window[1]
    Calendar.objects.filter(pk=cal.pk).update(**updates)
    held["lease"] = False
    CalendarConnection.objects.filter(pk=connection.pk).exclude(status=Status.DISCONNECTED).update(
        status=Status.CONNECTED, last_sync_at=now, last_success_at=now, last_error=result.warning[:500]
    )
    if result.unchanged:
        return "unchanged"
    return "full" if result.full else "incremental"


def _pause_end(exc: CalendarError, refused_at: datetime) -> datetime | None:
    """Until when the provider asked to be left alone (``Retry-After``, at most an hour: ``asked_wait``),
    counted from its refusal."""
    wait = asked_wait(exc)
    return refused_at + timedelta(seconds=wait) if wait > 0 else None


def cursor_read(stored: str) -> tuple[str | None, str]:
    """A stored ``sync_state`` as (the rep's zone it was read in, the provider's cursor); the zone is None
    for a state stored before it was recorded."""
    if stored.startswith(ZONE_TAG) and "\n" in stored:
        zone, cursor = stored.removeprefix(ZONE_TAG).split("\n", 1)
        return zone, cursor
    return None, stored


def cursor_stored(cursor: str, zone: ZoneInfo) -> str:
    """The ``sync_state`` to store: the provider's cursor and the zone it was read in ("" stays "")."""
    return f"{ZONE_TAG}{zone.key}\n{cursor}" if cursor else ""


def calendar_gone_confirm(*, calendar: Calendar) -> bool:
    """The provider does not find ``calendar`` (a sync or a push channel was answered 404): list the
    account's calendars again (``calendars_refresh``, as the daily refresh does), which removes those no
    longer listed, with their busy rows and push channels. True when the calendar is gone from Baton now;
    False when it is still listed, or the list could not be read (a revoked grant disconnects the
    connection, any other failure is recorded on it: ``calendars_refresh``)."""
    try:
        calendars_refresh(connection_id=calendar.connection_id)
    except CalendarError:
        return False
    gone = not Calendar.objects.filter(pk=calendar.pk).exists()
    if gone:
        logger.info("calendar %s is no longer in its account: removed", calendar.pk)
    return gone


def busy_apply(
    *, calendar: Calendar, result: SyncResult, window: tuple[datetime, datetime]
) -> tuple[int, int] | None:
    """Write a sync result as BusyInterval rows with few queries. Returns (rows deleted, rows created), or
    None when the calendar no longer syncs (nothing written).

    Full results replace the calendar's rows, touching only rows that differ; incremental results delete
    the changed ids and insert the new versions. Events that ended before the window are not stored.
    The calendar row is locked and read again first: a rep who disconnected, or stopped the calendar
    blocking, while the provider answered has had its busy rows removed, and rows written after that
    blocked the rep's time for good (nothing removes them: the calendar is gone, a reconnect has a new
    prefix). The disconnect's delete and the roles' update take the same row's lock, so the two take turns.
    """
    if result.unchanged:
        return 0, 0
    now = timezone.now()
    rep_id = calendar.connection.rep_id
    prefix = calendar.busy_prefix
    source = (
        BusyInterval.Source.ICS
        if calendar.connection.provider == Provider.ICS
        else BusyInterval.Source.CALENDAR
    )
    wanted = {prefix + e.external_id: e for e in result.upserts if e.end > window[0]}
    rows = BusyInterval.objects.filter(rep_id=rep_id, external_id__startswith=prefix)
    with transaction.atomic():
        syncing = (
            Calendar.objects.select_for_update(of=("self",))
            .filter(pk=calendar.pk, blocks_availability=True)
            .exclude(connection__status=Status.DISCONNECTED)
            .order_by()
        )
        if not list(syncing.values_list("pk", flat=True)):
            return None
        if result.full:
            stale, keep = [], set()
            for pk, external_id, start, end in rows.values_list("pk", "external_id", "start", "end"):
                event = wanted.get(external_id)
                if event is not None and external_id not in keep and (event.start, event.end) == (start, end):
                    keep.add(external_id)
                else:
                    stale.append(pk)
            deleted = _delete_chunked(BusyInterval.objects.filter(rep_id=rep_id), "pk__in", stale, now=now)
            create = [e for key, e in wanted.items() if key not in keep]
        else:
            changed = list(
                {prefix + x for x in result.deletions} | {prefix + e.external_id for e in result.upserts}
            )
            deleted = _delete_chunked(rows, "external_id__in", changed, now=now)
            create = list(wanted.values())
        BusyInterval.objects.bulk_create(
            [
                BusyInterval(
                    rep_id=rep_id,
                    start=e.start,
                    end=e.end,
                    source=source,
                    external_id=prefix + e.external_id,
                    synced_at=now,
                )
                for e in create
            ],
            batch_size=CHUNK,
        )
    return deleted, len(create)


def _delete_chunked(queryset, lookup: str, values: list, *, now: datetime) -> int:
    """Delete busy rows in chunks, archiving each chunk first (``calendars.services.history``)."""
    deleted = 0
    for i in range(0, len(values), CHUNK):
        chunk = queryset.filter(**{lookup: values[i : i + CHUNK]})
        busy_archive(chunk, now=now)
        deleted += chunk.delete()[0]
    return deleted


def due_calendar_ids(*, now: datetime, ics: bool) -> list[int]:
    """Blocking calendars whose last attempt is older than the poll interval (ICS or API calendars), or
    whose provider-asked pause (``retry_not_before``) is over with no sync since (the throttled sync is
    tried again as soon as the provider allows; a request deferred by the pause is released to queue
    again, once: a request made since the pause ended is on its way, and absorbs the next sweeps' until its
    sync starts). Calendars still in their pause are not due. Requests that were queued long ago but never ran
    (a lost task) are released so they queue again."""
    minutes = settings.CALENDAR_ICS_POLL_MINUTES if ics else settings.CALENDAR_POLL_MINUTES
    providers = [Provider.ICS] if ics else [Provider.GOOGLE, Provider.MICROSOFT]
    calendars = Calendar.objects.filter(
        blocks_availability=True,
        connection__provider__in=providers,
        connection__status__in=[Status.CONNECTED, Status.ERROR],
    )
    pause_over = Q(retry_not_before__lte=now)  # cleared when a sync starts: none since
    lost = Q(sync_requested_at__lt=now - LOST_REQUEST) & ~Q(retry_not_before__gt=now)
    # only a request made before the pause ended was deferred by it; one made since (this sweep's last run
    # queued it) is still on its way: released at every sweep, each would queue one more sync
    deferred = pause_over & Q(sync_requested_at__lt=F("retry_not_before"))
    calendars.filter(lost | deferred).update(sync_requested_at=None)
    due = calendars.filter(
        Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=now - timedelta(minutes=minutes)) | pause_over
    ).exclude(retry_not_before__gt=now)
    return list(due.values_list("pk", flat=True))
