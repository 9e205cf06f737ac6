"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly in-process (see settings), and a worker or beat
started that way exits at once with the reason: it would have nothing to consume or to send to."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("baton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

NO_BROKER = (
    "CELERY_BROKER_URL is not set, so tasks run in-process in the web server and a Celery {} has no broker "
    "to work with. Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) for the web server and for Celery."
)


def require_broker(role: str) -> None:
    """Stop a worker or beat that would run without a broker (SystemExit: Celery logs and swallows an
    Exception raised by a signal handler, and would go on starting)."""
    if app.conf.task_always_eager:
        raise SystemExit(NO_BROKER.format(role))


@signals.worker_init.connect
def _worker_needs_broker(**kwargs) -> None:
    require_broker("worker")


@signals.beat_init.connect
def _beat_needs_broker(**kwargs) -> None:
    require_broker("beat")
