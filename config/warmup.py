"""Pay a web worker's one-time costs before it serves its first request.

Django and the libraries under it put work off until first use: importing the URLconf and every view module
behind it, compiling each URL pattern and the e-mail validator's large regular expressions, listing the IANA
time zones, reading the Celery app's configuration and building its task registry. In a new process the
first slots request took 45–71 ms against 5 ms for the next one, the first booking 38–64 ms against 7–8 ms
(2026-12-04). gunicorn calls ``warm()`` from ``post_worker_init`` (``config/gunicorn.conf.py``), so a new
worker pays this before it takes a connection, while the others serve.

Nothing here touches the database or the broker: a worker that starts while they are down still starts. A
step that fails is logged and skipped; the request that needs it later pays (or fails) as it would have.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("baton.warmup")

# Requests of the public booking flow, resolved once so that their URL patterns are compiled.
PATHS = (
    "/api/v1/meeting-types",
    "/api/v1/meeting-types/warm-up/slots",
    "/api/v1/meeting-types/warm-up/bookings",
    "/api/v1/bookings/warm-up",
    "/api/v1/bookings/warm-up/cancel",
    "/api/v1/bookings/warm-up/reschedule",
)


def _urls() -> None:
    from django.urls import resolve

    for path in PATHS:
        resolve(path)


def _validators() -> None:
    from django.core.validators import EmailValidator

    from routing.validators import known_timezones

    EmailValidator()("warm-up@example.com")
    known_timezones()


def _tasks() -> None:
    from config.celery import app

    app.finalize(auto=True)
    app.conf.task_always_eager  # noqa: B018  (reading it loads the configuration)


STEPS: dict[str, Callable[[], None]] = {"urls": _urls, "validators": _validators, "tasks": _tasks}


def warm() -> dict[str, float]:
    """Run every step; returns the milliseconds each step took (a failed step is logged and left out)."""
    took: dict[str, float] = {}
    for name, step in STEPS.items():
        started = time.perf_counter()
        try:
            step()
        except Exception:
            logger.exception("warm-up step %r failed; the first request that needs it pays instead", name)
            continue
        took[name] = round((time.perf_counter() - started) * 1000, 1)
    logger.info("worker warmed up: %s (ms)", took)
    return took
