"""Deployment checks (``manage.py check --deploy``) for what the booking API promises in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

PROCESS_LOCAL = ("LocMemCache", "DummyCache")
LIMITS = ("BOOKING_RATE_LIMIT", "API_READ_RATE_LIMIT")


@register(Tags.caches, deploy=True)
def rate_limit_is_shared(app_configs=None, **kwargs) -> list[Warning]:
    """The per-client limits of the public POSTs and GETs (``LIMITS``) count in the default cache: in a
    process-local one each gunicorn worker counts on its own (a client gets the limit once per worker),
    and in a dummy one nothing is counted."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    limits = [f"{name} ({getattr(settings, name)})" for name in LIMITS if getattr(settings, name)]
    if not limits or not backend.endswith(PROCESS_LOCAL):
        return []
    return [
        Warning(
            f"{' and '.join(limits)} {'is' if len(limits) == 1 else 'are'} counted in a process-local cache "
            f"({backend.rsplit('.', 1)[-1]}): each server process counts a client on its own.",
            hint="Set CACHE_URL (e.g. redis://127.0.0.1:6379/1) so that every worker shares the counters.",
            id="baton.W001",
        )
    ]
