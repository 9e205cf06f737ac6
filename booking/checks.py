"""Deployment checks (``manage.py check --deploy``) for what the booking API promises in production."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

PROCESS_LOCAL = ("LocMemCache", "DummyCache")
LIMITS = ("BOOKING_RATE_LIMIT", "API_READ_RATE_LIMIT", "LOGIN_RATE_LIMIT")


@register(Tags.caches, deploy=True)
def rate_limit_is_shared(app_configs=None, **kwargs) -> list[Warning]:
    """The per-client limits of the public POSTs and GETs and of the sign-in pages' failed sign-ins
    (``LIMITS``) count in the default cache: in a process-local one each gunicorn worker counts on its own
    (a client gets the limit once per worker), and in a dummy one nothing is counted."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    limits = [f"{name} ({getattr(settings, name)})" for name in LIMITS if getattr(settings, name)]
    if not limits or not backend.endswith(PROCESS_LOCAL):
        return []
    named = limits[0] if len(limits) == 1 else f"{', '.join(limits[:-1])} and {limits[-1]}"
    return [
        Warning(
            f"{named} {'is' if len(limits) == 1 else 'are'} counted in a process-local cache "
            f"({backend.rsplit('.', 1)[-1]}): each server process counts a client on its own.",
            hint="Set CACHE_URL (e.g. redis://127.0.0.1:6379/1) so that every worker shares the counters.",
            id="baton.W001",
        )
    ]


NO_DELIVERY = ("console.EmailBackend", "locmem.EmailBackend", "dummy.EmailBackend", "filebased.EmailBackend")


@register(Tags.compatibility, deploy=True)
def email_is_delivered(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Confirmations, cancellations and invitations go by e-mail: with the development default (the
    console backend) a deployment prints them to its log and no prospect or host gets one. A backend that
    cannot be imported (one letter off) fails every delivery in the outbox until the message is dead (about
    5 h): an error, not a warning."""
    try:
        import_string(settings.EMAIL_BACKEND)
    except Exception as exc:  # ImportError for a wrong name; anything the module raises on import
        return [
            Error(
                f"EMAIL_BACKEND {settings.EMAIL_BACKEND!r} cannot be imported ({type(exc).__name__}: {exc}): "
                "no booking e-mail can be sent.",
                hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend (or another backend's "
                'dotted path; README "Production").',
                id="baton.E002",
            )
        ]
    if not settings.EMAIL_BACKEND.endswith(NO_DELIVERY):
        return []
    return [
        Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}: booking e-mails are not sent.",
            hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST, EMAIL_PORT, "
            'EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL (README "Production").',
            id="baton.W003",
        )
    ]
