"""Deployment checks (``manage.py check --deploy``) for what the booking API promises in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

PROCESS_LOCAL = ("LocMemCache", "DummyCache")


@register(Tags.caches, deploy=True)
def rate_limit_is_shared(app_configs=None, **kwargs) -> list[Warning]:
    """The per-client limit of the public POSTs (``BOOKING_RATE_LIMIT``) counts in the default cache: in a
    process-local one each gunicorn worker counts on its own (a client gets the limit once per worker),
    and in a dummy one nothing is counted."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not settings.BOOKING_RATE_LIMIT or not backend.endswith(PROCESS_LOCAL):
        return []
    return [
        Warning(
            f"BOOKING_RATE_LIMIT ({settings.BOOKING_RATE_LIMIT}) is counted in a process-local cache "
            f"({backend.rsplit('.', 1)[-1]}): each server process counts a client on its own.",
            hint="Set CACHE_URL (e.g. redis://127.0.0.1:6379/1) so that every worker shares the counters.",
            id="baton.W001",
        )
    ]
