"""Busy history: synced busy rows that a later sync removed, kept ``BUSY_HISTORY_DAYS`` for the routing
simulator (``calendars.selectors.busy_timeline`` reads them back)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from calendars.models import BusyHistory, BusyInterval

SYNCED = (BusyInterval.Source.CALENDAR, BusyInterval.Source.ICS)


def busy_archive(queryset, *, now: datetime | None = None) -> int:
    """Copy the synced rows of ``queryset`` (BusyInterval) into the history as removed ``now``. Call it right
    before deleting them. Rows that ended before the retention window are not kept."""
    now = now or timezone.now()
    keep_after = now - timedelta(days=settings.BUSY_HISTORY_DAYS)
    rows = queryset.filter(source__in=SYNCED, end__gt=keep_after).values_list(
        "rep_id", "start", "end", "source", "synced_at"
    )
    made = BusyHistory.objects.bulk_create(
        [
            BusyHistory(rep_id=rep, start=start, end=end, source=source, synced_at=synced, removed_at=now)
            for rep, start, end, source, synced in rows
        ],
        batch_size=500,
    )
    return len(made)


def busy_history_purge(*, now: datetime | None = None) -> int:
    """Forget history removed more than ``BUSY_HISTORY_DAYS`` ago (the daily beat task)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.BUSY_HISTORY_DAYS)
    return BusyHistory.objects.filter(removed_at__lt=cutoff).delete()[0]
