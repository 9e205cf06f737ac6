"""Celery tasks: thin wrappers taking primary keys and calling services.

Periodic ones (created as django_celery_beat PeriodicTasks by migration 0003, editable in the admin):
``calendars.sync_due`` (API calendars not synced within CALENDAR_POLL_MINUTES), ``calendars.poll_ics``
(ICS feeds, CALENDAR_ICS_POLL_MINUTES) and ``calendars.renew_watches`` (push channels).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from calendars.services import sync, watches
from calendars.services.connections import calendars_refresh


@shared_task(name="calendars.sync_calendar", ignore_result=True)
def sync_calendar_task(calendar_id: int, force_full: bool = False) -> str:
    return sync.calendar_sync(calendar_id=calendar_id, force_full=force_full)


@shared_task(name="calendars.sync_due", ignore_result=True)
def sync_due_task() -> int:
    now = timezone.now()
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
    for pk in ids:
        watch_ensure_task.delay(pk)
    return len(ids)


@shared_task(name="calendars.watch_ensure", ignore_result=True)
def watch_ensure_task(calendar_id: int) -> str:
    return watches.watch_ensure(calendar_id=calendar_id)


@shared_task(name="calendars.connection_setup", ignore_result=True)
def connection_setup_task(connection_id: int) -> None:
    """After connecting: list calendars, then sync and open push channels for the blocking ones."""
    for cal in calendars_refresh(connection_id=connection_id):
        if cal.blocks_availability:
            sync.request_sync(calendar_id=cal.pk)
            watch_ensure_task.delay(cal.pk)
