"""Busy history: what a sync removes is kept (with when it was synced and removed) for the routing
simulator's replays, read back by ``calendars.selectors.busy_timeline``, purged after BUSY_HISTORY_DAYS."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from calendars.models import BusyHistory, BusyInterval, Calendar
from calendars.selectors import busy_timeline
from calendars.services.connections import calendar_roles_set
from calendars.services.history import busy_history_purge
from calendars.services.sync import calendar_sync
from routing.core import Interval

pytestmark = pytest.mark.django_db
T0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_sync_stamps_rows_and_keeps_what_it_removes(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    kept = fake_google.put_event(cal.external_id, start=at(24), end=at(25))
    gone = fake_google.put_event(cal.external_id, start=at(48), end=at(49))
    with time_machine.travel(T0, tick=False):
        calendar_sync(calendar_id=cal.pk)
    assert set(BusyInterval.objects.filter(rep=rep).values_list("synced_at", flat=True)) == {T0}
    fake_google.cancel_event(cal.external_id, gone["id"])
    fake_google.put_event(cal.external_id, start=at(26), end=at(27), event_id=kept["id"])  # moved
    with time_machine.travel(at(1), tick=False):
        calendar_sync(calendar_id=cal.pk)
    history = set(BusyHistory.objects.filter(rep=rep).values_list("start", "end", "synced_at", "removed_at"))
    assert history == {(at(24), at(25), T0, at(1)), (at(48), at(49), T0, at(1))}
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", "synced_at")) == [(at(26), at(1))]


def test_a_calendar_that_stops_blocking_keeps_its_rows_in_history(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    fake_google.put_event(cal.external_id, start=at(24), end=at(25))
    calendar_sync(calendar_id=cal.pk)
    calendar_roles_set(rep=rep, blocking_ids=set(), receiving_id=None)
    assert not BusyInterval.objects.filter(rep=rep).exists()
    assert BusyHistory.objects.filter(rep=rep, start=at(24)).count() == 1


def test_manual_rows_are_not_history_and_old_history_is_purged(make_rep, settings):
    rep = make_rep()
    row = BusyInterval.objects.create(rep=rep, start=at(1), end=at(2))
    row.delete()  # manual rows: deleted by people, not by a sync
    assert not BusyHistory.objects.exists()
    settings.BUSY_HISTORY_DAYS = 30
    made = {"source": "calendar", "rep": rep}
    old = BusyHistory.objects.create(start=at(-1000), end=at(-999), removed_at=at(-800), **made)
    recent = BusyHistory.objects.create(start=at(-10), end=at(-9), removed_at=at(-5), **made)
    assert busy_history_purge(now=T0) == 1
    assert list(BusyHistory.objects.values_list("pk", flat=True)) == [recent.pk] and old.pk != recent.pk


def test_busy_timeline_replays_what_was_known_when(make_rep):
    rep = make_rep()
    start, end = at(0), at(10)
    lo, hi = at(-24), at(48)
    iv = {k: Interval(at(20 + k), at(21 + k)) for k in range(6)}

    def row(k, synced):
        BusyInterval.objects.create(
            rep=rep, start=iv[k].start, end=iv[k].end, source="calendar", synced_at=synced
        )

    def hist(k, synced, removed):
        BusyHistory.objects.create(
            rep=rep, start=iv[k].start, end=iv[k].end, source="calendar", synced_at=synced, removed_at=removed
        )

    row(0, None)  # entered in Baton / older: known since ever → untouched
    row(1, at(5))  # synced mid-period → hidden at start, appears at 5
    row(2, at(12))  # synced after the period → hidden, never appears
    hist(3, None, at(4))  # there at start, removed at 4
    hist(4, at(2), at(7))  # appears at 2, removed at 7
    hist(5, None, at(-1))  # removed before the period → nothing
    timeline = busy_timeline([rep.pk], start=start, end=end, lo=lo, hi=hi)
    assert sorted(timeline.hidden_at_start[rep.pk], key=lambda i: i.start) == [iv[1], iv[2]]
    assert timeline.shown_at_start == {rep.pk: [iv[3]]}
    assert timeline.events == [
        (at(2), rep.pk, iv[4], True),
        (at(4), rep.pk, iv[3], False),
        (at(5), rep.pk, iv[1], True),
        (at(7), rep.pk, iv[4], False),
    ]
