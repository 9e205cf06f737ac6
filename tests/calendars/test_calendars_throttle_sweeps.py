"""A provider's asked pause (Retry-After) over time: counted from its refusal, and a calendar whose pause is
over is queued once, not at every sweep."""

from __future__ import annotations

import datetime as dt
import types

import pytest
import time_machine
from django.utils import timezone

from calendars.models import Calendar
from calendars.services.sync import calendar_sync, request_sync
from tests.calendars.test_calendars_throttle import GRAPH_429, MS_DELTA, primary


@pytest.mark.django_db
def test_graphs_pause_counts_from_its_last_refusal_not_from_the_syncs_start(
    make_rep, ms_connection, fake_ms, monkeypatch, django_capture_on_commit_callbacks
):
    """Graph throttles a sync with ``Retry-After: 20`` on every answer. The provider waits it out in the
    worker three times (20 s each, within its 30 s cap), then gives up with the fourth 429, which again
    asks for 20 s. The calendar is paused until the sync's START + 20 s (``_pause_end(exc, now)``, ``now``
    being when the sync began), a moment already 40 s in the past: no pause at all. A change notification
    5 s later syncs at once and asks Graph again 15 s before the time it named."""
    cal = primary(ms_connection(make_rep()))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.add_fault("GET", MS_DELTA, status=429, times=-1, headers={"Retry-After": "20"}, body=GRAPH_429)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        # the provider's in-worker waits pass on the clock
        monkeypatch.setattr(
            "calendars.providers.microsoft.time", types.SimpleNamespace(sleep=traveller.shift)
        )
        assert calendar_sync(calendar_id=cal.pk) == "failed"
        refused_at = timezone.now()
        paused_until = Calendar.objects.get(pk=cal.pk).retry_not_before
        asked = len(fake_ms.requests_to("GET", MS_DELTA))
        traveller.shift(5)
        queued: list[int] = []
        monkeypatch.setattr("calendars.services.sync._enqueue", queued.append)
        with django_capture_on_commit_callbacks(execute=True):
            request_sync(calendar_id=cal.pk)  # what the webhook does for a change notification
        for calendar_id in list(queued):
            calendar_sync(calendar_id=calendar_id)
    assert len(fake_ms.requests_to("GET", MS_DELTA)) == asked, (
        f"Graph asked again 5 s after its last 429 (Retry-After: 20 at {refused_at:%H:%M:%S}); the calendar "
        f"was paused only until {paused_until:%H:%M:%S}"
    )


@pytest.mark.django_db
def test_a_calendar_whose_pause_is_over_is_queued_once_not_at_every_sweep(
    make_rep, ms_connection, fake_ms, monkeypatch, django_capture_on_commit_callbacks
):
    """A calendar paused by a provider's ``Retry-After`` until T+60 s. The sweep at T+61 s queues its sync
    (``sync_requested_at`` set: further requests are absorbed until it runs). The workers are busy (a
    throttled tenant is exactly when they are) and the sweep runs again two minutes later: the pause is
    still "over with no sync since", so ``due_calendar_ids`` clears the request flag again and a second
    sync task is queued, and a third at the next sweep: each of them asks the provider that just throttled
    Baton once it runs."""
    from calendars.tasks import sync_due_task

    cal = primary(ms_connection(make_rep()))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    t = timezone.now()
    Calendar.objects.filter(pk=cal.pk).update(
        retry_not_before=t + dt.timedelta(seconds=60), last_attempt_at=t
    )
    queued: list[int] = []
    monkeypatch.setattr("calendars.services.sync._enqueue", queued.append)
    for seconds in (61, 181, 301):  # the sync sweep runs every 2 minutes
        at = t + dt.timedelta(seconds=seconds)
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            sync_due_task()
    assert queued == [cal.pk], f"one sync request, absorbed until it runs; queued {len(queued)}"
