"""Celery tasks: thin wrappers taking primary keys and calling services.

Periodic ones (created as django_celery_beat PeriodicTasks by migration 0003, editable in the admin):
``calendars.sync_due`` (API calendars not synced within CALENDAR_POLL_MINUTES, or whose provider-asked pause
is over; and accounts whose first calendar listing failed, listed again with back-off), ``calendars.poll_ics``
(ICS feeds, CALENDAR_ICS_POLL_MINUTES) and ``calendars.renew_watches`` (push channels); by migration 0004
``calendars.refresh_lists`` (daily: each connected account's calendar list, so a calendar added or removed
at Google or Microsoft shows up without the rep pressing Refresh) and ``calendars.purge_busy_history``
(daily, migration 0005: busy history older than BUSY_HISTORY_DAYS).
"""

from __future__ import annotations

import atexit
import logging
import os

from celery import shared_task
from django.utils import timezone

from booking.publisher import Publisher
from calendars.errors import CalendarError
from calendars.models import CalendarConnection
from calendars.services import sync, watches
from calendars.services.connections import calendars_refresh, relist_claim
from calendars.services.history import busy_history_purge
from calendars.services.writeback import connection_events_resync

logger = logging.getLogger("calendars")


def enqueue(task, *args) -> bool:
    """Queue ``task`` from a request or a webhook: with the broker down the caller's work (saved choices, an
    accepted notification) stands and the periodic sweeps catch up (``renew_watches`` reopens channels,
    ``sync_due`` requests syncs again once a request is ``LOST_REQUEST`` old); a 500 would lose it instead.

    With a broker the publish is handed to ``publisher``'s background thread and this returns at once: a
    request never waits for the broker. Published in the caller's thread, each calendar of a Graph batch
    waited out the broker's 2 s connect timeout when its host dropped packets (three calendars: 6 s; Graph
    wants an answer within 3 s). Without one (``make run``, the tests) the task runs here, in-process, as
    before; False when it could not be started. The tasks that queue one task per calendar or account use
    it too: one failed publish does not skip the rest of the loop."""
    if not task.app.conf.task_always_eager:
        publisher.submit([(task, args)])
        return True
    try:
        task.delay(*args)
    except Exception:
        logger.exception("could not queue %s%r", task.name, args)
        return False
    return True


def _publish(items: list[tuple]) -> None:
    """``publisher``'s publish: each task on its own, a failure logged and the next one still tried. Never a
    task run in this thread: should the app run tasks in-process by now (only tests switch that back), the
    rest is dropped."""
    for index, (task, args) in enumerate(items):
        if task.app.conf.task_always_eager:
            dropped = [(t.name, a) for t, a in items[index:]]
            logger.warning("not queued (tasks run in-process now): %s", dropped)
            return
        try:
            task.delay(*args)
        except Exception:
            logger.exception("could not queue %s%r; the periodic sweeps catch up", task.name, args)


publisher = Publisher(
    _publish, name="calendars-publisher", failure="could not queue %s; the periodic sweeps catch up"
)
atexit.register(publisher.flush, 2.0)
os.register_at_fork(after_in_child=publisher.after_fork)


@shared_task(name="calendars.sync_calendar", ignore_result=True)
def sync_calendar_task(calendar_id: int, force_full: bool = False) -> str:
    return sync.calendar_sync(calendar_id=calendar_id, force_full=force_full)


@shared_task(name="calendars.sync_due", ignore_result=True)
def sync_due_task() -> int:
    """Request the due syncs (returns how many); first, list again the accounts never listed (their reps are
    withheld until then), with back-off (``selectors.relist_due_ids``)."""
    now = timezone.now()
    for pk in relist_claim(now=now):
        enqueue(calendar_list_refresh_task, pk)
    ids = sync.due_calendar_ids(now=now, ics=False)
    return sum(sync.request_sync(calendar_id=pk, now=now) for pk in ids)


@shared_task(name="calendars.poll_ics", ignore_result=True)
def poll_ics_task() -> int:
    now = timezone.now()
    ids = sync.due_calendar_ids(now=now, ics=True)
    return sum(sync.request_sync(calendar_id=pk, now=now) for pk in ids)


@shared_task(name="calendars.renew_watches", ignore_result=True)
def renew_watches_task() -> int:
    ids = watches.watches_due(now=timezone.now())
    return sum(enqueue(watch_ensure_task, pk) for pk in ids)


@shared_task(name="calendars.watch_ensure", ignore_result=True)
def watch_ensure_task(calendar_id: int) -> str:
    return watches.watch_ensure(calendar_id=calendar_id)


@shared_task(name="calendars.connection_setup", ignore_result=True)
def connection_setup_task(connection_id: int) -> None:
    """After connecting: list calendars, then sync and open push channels for the blocking ones, and (a
    reconnect) bring Baton's events written into them in line with their bookings."""
    for cal in calendars_refresh(connection_id=connection_id):
        if cal.blocks_availability:
            sync.request_sync(calendar_id=cal.pk)
            enqueue(watch_ensure_task, cal.pk)  # if the broker is down, ``renew_watches`` opens it later
    connection_events_resync(connection_id=connection_id)


@shared_task(name="calendars.connection_events_resync", ignore_result=True)
def connection_events_resync_task(connection_id: int) -> int:
    """A rep connected an account again: bring Baton's events in its calendars in line with their bookings."""
    return connection_events_resync(connection_id=connection_id)


@shared_task(name="calendars.refresh_lists", ignore_result=True)
def refresh_lists_task() -> int:
    ids = list(
        CalendarConnection.objects.exclude(status=CalendarConnection.Status.DISCONNECTED).values_list(
            "pk", flat=True
        )
    )
    return sum(enqueue(calendar_list_refresh_task, pk) for pk in ids)


@shared_task(name="calendars.calendar_list_refresh", ignore_result=True)
def calendar_list_refresh_task(connection_id: int) -> str:
    """Mirror one account's calendar list; a newly found blocking calendar is synced and watched at once.
    A revoked grant marks the connection disconnected, a provider that fails marks it ``error`` with the
    reason (both inside ``calendars_refresh``). An account listed before is left for tomorrow's run (the
    calendars already known keep syncing); one never listed is listed again by ``sync_due`` with back-off."""
    try:
        calendars = calendars_refresh(connection_id=connection_id)
    except CalendarConnection.DoesNotExist:
        return "gone"
    except CalendarError as exc:
        return exc.code
    for cal in calendars:
        if cal.blocks_availability and cal.last_synced_at is None and cal.sync_requested_at is None:
            sync.request_sync(calendar_id=cal.pk)
            enqueue(watch_ensure_task, cal.pk)
    return "ok"


@shared_task(name="calendars.purge_busy_history", ignore_result=True)
def purge_busy_history_task() -> int:
    return busy_history_purge()
