"""Celery tasks and their beat schedules (created by a data migration, editable in the admin)."""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from calendars import tasks
from calendars.models import BusyInterval, Calendar
from config.celery import app

pytestmark = pytest.mark.django_db


def test_periodic_tasks_exist_and_point_at_registered_tasks():
    rows = {p.task: p for p in PeriodicTask.objects.filter(task__startswith="calendars.")}
    assert set(rows) == {
        "calendars.sync_due",
        "calendars.poll_ics",
        "calendars.renew_watches",
        "calendars.refresh_lists",
        "calendars.purge_busy_history",
    }
    assert rows["calendars.refresh_lists"].interval.every == 1
    assert rows["calendars.refresh_lists"].interval.period == "days"
    assert rows["calendars.sync_due"].interval.every == 2 and rows["calendars.sync_due"].enabled
    for name in rows:
        assert name in app.tasks


def test_sweeps_queue_due_calendars_once(
    make_rep, google_connection, ics_connection, fake_google, django_capture_on_commit_callbacks
):
    from calendars_harness import fixture_bytes

    rep = make_rep()
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    ics_connection(make_rep(), fixture_bytes("google_export_xwr.ics"))
    with django_capture_on_commit_callbacks(execute=True):  # tasks run eagerly (no broker in tests)
        assert tasks.sync_due_task() == 1
        assert tasks.poll_ics_task() == 1
    assert BusyInterval.objects.filter(rep=rep).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sync_due_task() == 0  # synced just now: not due


def test_connection_setup_lists_and_syncs(
    make_rep, google_connection, fake_google, django_capture_on_commit_callbacks
):
    rep = make_rep()
    conn = google_connection(rep)
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.connection_setup_task(conn.pk)
    assert BusyInterval.objects.filter(rep=rep).count() == 1


def test_daily_refresh_mirrors_calendar_lists_of_connected_accounts(
    make_rep, google_connection, fake_google, django_capture_on_commit_callbacks
):
    from calendars.models import CalendarConnection
    from tests.fakes.google import FakeCalendar

    rep, gone = make_rep(), make_rep()
    conn = google_connection(rep, extra_calendars=("Team",))
    old = google_connection(gone)
    CalendarConnection.objects.filter(pk=old.pk).update(status=CalendarConnection.Status.DISCONNECTED)
    account = fake_google.accounts[conn.account_email]
    account.calendars.pop("team@group.calendar.google.com")
    account.calendars["new@group.calendar.google.com"] = FakeCalendar("new@group.calendar.google.com", "New")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.refresh_lists_task() == 1  # the disconnected account is not asked
    names = set(Calendar.objects.filter(connection=conn).values_list("name", flat=True))
    assert names == {conn.account_email, "New"}
    assert Calendar.objects.filter(connection=old).count() == 1  # untouched
