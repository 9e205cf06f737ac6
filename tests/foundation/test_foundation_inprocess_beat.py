"""The in-process scheduler of ``make run`` (config/inprocess_beat.py): without a broker nothing else runs the
django-celery-beat PeriodicTasks, so an ICS feed synced once and never again (its rep withheld from booking
pages after CALENDAR_STALENESS_MINUTES) and a failed e-mail was never retried."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from celery import shared_task
from cryptography.fernet import Fernet
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config import inprocess_beat
from tests.fakes.ics import FakeIcsHost
from tests.foundation.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
CALLS: list[str] = []


@shared_task(name="tests.inprocess_beat.record")
def record_task(label: str) -> None:
    CALLS.append(label)


@shared_task(name="tests.inprocess_beat.fail")
def fail_task() -> None:
    raise RuntimeError("the task's own failure")


@pytest.fixture
def beat_rows(db):
    """Only the rows a test makes are enabled (the migrations' own rows are switched off), no calls yet."""
    PeriodicTask.objects.update(enabled=False)
    CALLS.clear()

    def make(name, *, last_run_at, interval=None, crontab=None, task="tests.inprocess_beat.record", **kw):
        if interval is not None:
            kw["interval"] = IntervalSchedule.objects.create(every=interval, period="minutes")
        else:
            minute, hour = crontab
            kw["crontab"] = CrontabSchedule.objects.create(minute=minute, hour=hour, timezone="UTC")
        args = json.dumps([name]) if task == "tests.inprocess_beat.record" else "[]"
        return PeriodicTask.objects.create(name=name, task=task, args=args, last_run_at=last_run_at, **kw)

    return make


def test_a_tick_runs_exactly_the_due_tasks_and_records_their_runs(beat_rows, clock):
    minutes = dt.timedelta(minutes=1)
    beat_rows("every-5-due", interval=5, last_run_at=NOW - 6 * minutes)
    later = beat_rows("every-5-not-yet", interval=5, last_run_at=NOW - 4 * minutes)
    off = beat_rows("disabled", interval=5, last_run_at=NOW - 60 * minutes)
    PeriodicTask.objects.filter(pk=off.pk).update(enabled=False)
    beat_rows("daily-07:00", crontab=("0", "7"), last_run_at=NOW - 24 * 60 * minutes)  # NOW is 07:00
    beat_rows("daily-08:00", crontab=("0", "8"), last_run_at=NOW - minutes)

    assert inprocess_beat.tick() == ["every-5-due", "daily-07:00"]
    assert CALLS == ["every-5-due", "daily-07:00"]  # run in this process, with the row's arguments
    row = PeriodicTask.objects.get(name="every-5-due")
    assert (row.last_run_at, row.total_run_count) == (NOW, 1)  # as beat records it (the admin shows it)
    assert PeriodicTask.objects.get(name="every-5-not-yet").total_run_count == 0
    assert PeriodicTask.objects.get(name="disabled").last_run_at == NOW - 60 * minutes

    clock.shift(2 * minutes)  # the ones just run wait for their next time; the other's has come
    assert inprocess_beat.tick() == ["every-5-not-yet"]
    assert PeriodicTask.objects.get(pk=later.pk).last_run_at == NOW + 2 * minutes
    clock.shift(25 * 60 * minutes)
    assert sorted(inprocess_beat.tick()) == ["daily-07:00", "daily-08:00", "every-5-due", "every-5-not-yet"]


def test_a_failing_task_does_not_stop_the_others(beat_rows, clock, caplog):
    past = NOW - dt.timedelta(hours=1)
    beat_rows("raises", interval=5, last_run_at=past, task="tests.inprocess_beat.fail")
    beat_rows("unknown task", interval=5, last_run_at=past, task="tests.inprocess_beat.no_such_task")
    beat_rows("fine", interval=5, last_run_at=past)
    caplog.set_level(logging.ERROR)

    assert inprocess_beat.tick() == ["raises", "fine"]
    assert CALLS == ["fine"]
    assert PeriodicTask.objects.get(name="raises").last_run_at == NOW  # waits for its next time, as in beat
    logged = {r.getMessage(): r.exc_info for r in caplog.records}
    assert any("the task's own failure" in m and info for m, info in logged.items()), logged
    assert any("'unknown task'" in m and info for m, info in logged.items()), logged  # with the traceback


def test_the_thread_keeps_ticking_after_a_failed_tick_and_closes_its_connections(monkeypatch):
    events: list[str] = []

    class Stop(BaseException):
        pass

    def sleep(seconds):
        assert seconds == inprocess_beat.TICK_SECONDS
        if len(events) >= 4:
            raise Stop

    def tick():
        events.append("tick")
        if events.count("tick") == 1:
            raise RuntimeError("database not migrated yet")

    monkeypatch.setattr(inprocess_beat.time, "sleep", sleep)
    monkeypatch.setattr(inprocess_beat, "tick", tick)
    monkeypatch.setattr(inprocess_beat.connections, "close_all", lambda: events.append("closed"))
    with pytest.raises(Stop):
        inprocess_beat._run()
    assert events == ["tick", "closed", "tick", "closed"]


RUNSERVER = ["manage.py", "runserver", "127.0.0.1:8000"]


@pytest.mark.parametrize(
    "argv, environ, eager, enabled, expected",
    [
        (RUNSERVER, {"RUN_MAIN": "true"}, True, True, True),  # make run: the autoreloader's child
        ([*RUNSERVER, "--noreload"], {}, True, True, True),
        (RUNSERVER, {}, True, True, False),  # the autoreloader's parent only watches files
        (RUNSERVER, {"RUN_MAIN": "true"}, False, True, False),  # a broker: celery beat does this
        (RUNSERVER, {"RUN_MAIN": "true"}, True, False, False),  # INPROCESS_SCHEDULER=0
        (["manage.py", "migrate"], {"RUN_MAIN": "true"}, True, True, False),
        (["manage.py", "shell", "--noreload"], {}, True, True, False),
        (["manage.py"], {}, True, True, False),
        (["/venv/bin/gunicorn", "config.wsgi"], {}, True, True, False),
        (["/venv/bin/celery", "-A", "config", "worker"], {}, True, True, False),
        (["/venv/bin/pytest", "-q"], {}, True, True, False),
    ],
)
def test_it_starts_only_in_the_dev_server_without_a_broker(settings, argv, environ, eager, enabled, expected):
    settings.CELERY_TASK_ALWAYS_EAGER, settings.INPROCESS_SCHEDULER = eager, enabled
    assert inprocess_beat.should_start(argv, environ) is expected


def test_not_started_in_the_tests():
    assert inprocess_beat.maybe_start() is False
    assert "inprocess-beat" not in {t.name for t in threading.enumerate()}


def test_start_runs_one_daemon_thread(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(inprocess_beat, "_run", release.wait)
    monkeypatch.setattr(inprocess_beat, "_thread", None)
    first = inprocess_beat.start()
    assert inprocess_beat.start() is first and first.daemon and first.name == "inprocess-beat"
    release.set()
    first.join(5)


def test_inprocess_scheduler_is_read_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path}/c.db")
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.INPROCESS_SCHEDULER)"
    )
    out = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True
        )
        for extra in ({}, {"INPROCESS_SCHEDULER": "0"}, {"INPROCESS_SCHEDULER": "maybe"})
    ]
    assert [r.stdout.strip() for r in out[:2]] == ["True", "False"]
    assert "INPROCESS_SCHEDULER: expected one of" in out[2].stderr


# --- the user-visible effect: a rep with an ICS feed stays bookable, and the feed's changes arrive


def _feed(*starts: dt.datetime) -> bytes:
    events = "".join(
        "BEGIN:VEVENT\r\n"
        f"UID:busy-{i}@example.org\r\nDTSTAMP:20260301T000000Z\r\n"
        f"DTSTART:{s:%Y%m%dT%H%M%SZ}\r\nDTEND:{s + dt.timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\n"
        "SUMMARY:Busy\r\nEND:VEVENT\r\n"
        for i, s in enumerate(starts)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{events}END:VCALENDAR\r\n".encode()


@pytest.fixture
def ics_host(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = True  # the fake host is on loopback
    settings.CALENDAR_PUSH_ENABLED = False
    server = FakeIcsHost().start()
    yield server
    server.stop()


def _starts(client) -> set[dt.datetime]:
    response = client.get("/api/v1/meeting-types/intro-ics/slots", {"timezone": "UTC"})
    assert response.status_code == 200, response.content
    return {dt.datetime.fromisoformat(s["start"]).astimezone(dt.UTC) for s in response.json()["slots"]}


@pytest.mark.parametrize("scheduler", [True, False])
def test_an_ics_feed_keeps_syncing_under_make_run(
    scheduler, db, clock, ics_host, client, django_capture_on_commit_callbacks
):
    from booking.models import MeetingType
    from calendars.models import Calendar, WorkingHours
    from calendars.services.connections import ics_connect
    from calendars.services.sync import calendar_sync
    from routing.models import Pool, PoolMember, Rep

    rep = Rep.objects.create(name="Ida", email="ida@example.com", timezone="UTC")
    for weekday in range(7):
        WorkingHours.objects.create(rep=rep, weekday=weekday, start=dt.time(0), end=dt.time(0))
    pool = Pool.objects.create(name="Inbound", slug="inbound-ics", strategy="round_robin")
    PoolMember.objects.create(pool=pool, rep=rep)
    MeetingType.objects.create(
        slug="intro-ics",
        title="Intro",
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=0,
        horizon_days=3,
        pool=pool,
    )
    url = ics_host.publish(_feed(NOW + dt.timedelta(days=1, hours=3)))
    cal = Calendar.objects.get(connection=ics_connect(rep=rep, url=url))
    assert calendar_sync(calendar_id=cal.pk) == "full"  # connecting syncs the feed once
    PeriodicTask.objects.update(last_run_at=NOW)  # every periodic task has just run
    target = NOW + dt.timedelta(days=2, hours=8)
    assert target in _starts(client)

    ics_host.replace(url, _feed(NOW + dt.timedelta(days=1, hours=3), target))  # the rep books a meeting
    for _ in range(40):  # 200 minutes: past CALENDAR_STALENESS_MINUTES (180)
        clock.shift(dt.timedelta(minutes=5))
        if scheduler:
            with django_capture_on_commit_callbacks(execute=True):  # the dev server autocommits
                inprocess_beat.tick()

    offered = _starts(client)
    if scheduler:
        assert offered, "the rep was withheld: the feed was not polled"
        assert target not in offered  # the feed's new event was seen
        assert target + dt.timedelta(hours=1) in offered
    else:
        assert not offered  # what make run did before: synced once, then withheld as stale


def test_in_process_task_runs_do_not_log_a_line_each_but_failures_do(beat_rows, clock, caplog):
    """Without a broker every e-mail of a booking and every periodic run is a task run in-process, and Celery
    logged "Task … succeeded in …" for each at INFO: the `make run` console filled with them. Failures are
    still logged, with their traceback."""
    caplog.set_level(logging.INFO)  # the root's level, as LOG_LEVEL's default

    record_task.apply(["quiet"])
    fail_task.apply()

    trace = [r for r in caplog.records if r.name == "celery.app.trace"]
    assert not [r for r in trace if r.levelno < logging.WARNING], [r.getMessage() for r in trace]
    assert [r for r in trace if r.levelno >= logging.ERROR and "the task's own failure" in r.getMessage()]
