"""Celery beat's work inside the dev server when there is no broker (``make run``).

Without CELERY_BROKER_URL tasks run eagerly where they are queued and ``celery beat`` refuses to start
(config/celery.py), so nothing ran the django-celery-beat ``PeriodicTask`` rows the migrations create
(config/beat.py): an ICS feed synced once and never again (after CALENDAR_STALENESS_MINUTES its rep was
withheld from booking pages), and an e-mail whose delivery failed was never retried (no outbox sweep).

In ``manage.py runserver`` without a broker a daemon thread runs, every ``TICK_SECONDS``, the enabled rows
that are due, in-process, and records their runs as beat's ``DatabaseScheduler`` does (``last_run_at`` and
``total_run_count``, shown in the admin). Whether a row is due is beat's own ``ModelEntry.is_due``, so every
kind of schedule (the migrations' intervals, an admin's crontab, solar or clocked one), start time, expiry
and one-off row behaves as under beat. ``INPROCESS_SCHEDULER=0`` turns it off. Not in gunicorn, Celery,
tests or other commands: with a broker, beat does this, and a command has no business running sweeps.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.db import connections
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger("config.inprocess_beat")
TICK_SECONDS = 30  # beat's own DatabaseScheduler wakes every 5 s; the shortest migration interval is 1 min

_lock = threading.Lock()
_thread: threading.Thread | None = None


def should_start(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True in the dev server's serving process without a broker: ``manage.py runserver`` in the
    autoreloader's child (RUN_MAIN=true; its parent only watches files and restarts it) or with
    ``--noreload``, unless INPROCESS_SCHEDULER is off. ``argv[1]`` is the subcommand, as Django reads it."""
    if not settings.INPROCESS_SCHEDULER or not settings.CELERY_TASK_ALWAYS_EAGER:
        return False
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    return environ.get("RUN_MAIN") == "true" or "--noreload" in argv


def maybe_start() -> bool:
    """Start the thread if ``should_start`` says so for this process (called from an AppConfig's
    ``ready``)."""
    if not should_start(sys.argv, os.environ):
        return False
    start()
    return True


def start() -> threading.Thread:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="inprocess-beat", daemon=True)
            _thread.start()
        return _thread


def _run() -> None:
    logger.info("no broker: periodic tasks run in this process every %s s", TICK_SECONDS)
    while True:
        time.sleep(TICK_SECONDS)  # the first tick after start-up, not during the server's own checks
        try:
            tick()
        except Exception:  # the database not migrated yet, or gone for a moment: try again next tick
            logger.exception("in-process scheduler: could not read the periodic tasks")
        finally:
            connections.close_all()  # this thread's connections only; no SQLite handle kept between ticks


def tick() -> list[str]:
    """Run every enabled ``PeriodicTask`` that is due, one after the other; the names of those run. A task
    that fails is logged (Celery logs a task's own exception with its traceback) and the others still run.
    Nothing here holds a transaction open: the rows are read, each run recorded in its own autocommitted
    UPDATE, and each task opens the transactions it needs, as it would in a worker."""
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    autodiscover_modules("tasks")  # registers the tasks of modules nothing in this process imported yet
    rows = list(PeriodicTask.objects.filter(enabled=True).order_by("pk"))
    ran = []
    for row in rows:
        try:
            if _run_if_due(app, row):
                ran.append(row.name)
        except Exception:
            logger.exception("in-process scheduler: periodic task %r (%s) failed", row.name, row.task)
    return ran


def _run_if_due(app, row) -> bool:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    entry = ModelEntry(row, app=app)
    if not entry.is_due().is_due:
        return False
    # Recorded before the run, as beat records a task when it sends it: a task that fails (or crashes the
    # process) waits for its next interval instead of running again at every tick. A plain UPDATE, as beat's
    # save of these fields does not mark the schedule as changed either.
    PeriodicTask.objects.filter(pk=row.pk).update(
        last_run_at=timezone.now(), total_run_count=F("total_run_count") + 1
    )
    app.tasks[entry.task].apply(entry.args, entry.kwargs, headers=entry.options.get("headers"))
    return True
