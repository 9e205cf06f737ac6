"""Deployment checks (``manage.py check --deploy``) for the calendars' alerts."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def alerts_have_a_recipient(app_configs=None, **kwargs) -> list[Warning]:
    """Calendar alerts (a calendar disconnected by its provider, a host who deleted Baton's meeting) go to
    ``CALENDAR_ALERT_EMAILS``, else to Django's ``ADMINS``; with neither they reach no one (the rep who
    must reconnect is e-mailed anyway; the log has a warning)."""
    if settings.CALENDAR_ALERT_EMAILS or settings.ADMINS:
        return []
    return [
        Warning(
            "Calendar alerts have no recipient: CALENDAR_ALERT_EMAILS and ADMINS are both empty.",
            hint="Set CALENDAR_ALERT_EMAILS (comma-separated addresses) to the people who reassign bookings.",
            id="baton.W002",
        )
    ]
