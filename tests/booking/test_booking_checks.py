"""``manage.py check --deploy`` warns when the public POSTs' rate limit is counted per process."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from booking.checks import rate_limit_is_shared

LOCAL = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SHARED = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "baton_cache"}}


@pytest.mark.parametrize(
    ("caches", "limit", "warned"),
    [(LOCAL, "30/min", True), (SHARED, "30/min", False), (LOCAL, "", False)],
    ids=["process-local", "shared", "no-limit"],
)
def test_the_rate_limit_must_be_counted_in_a_shared_cache(caches, limit, warned):
    # restored before the cache is cleared
    with override_settings(
        CACHES=caches, BOOKING_RATE_LIMIT=limit, API_READ_RATE_LIMIT=limit, LOGIN_RATE_LIMIT=limit
    ):
        found = rate_limit_is_shared()
    assert [w.id for w in found] == (["baton.W001"] if warned else [])
    if warned:
        assert "each server process counts a client on its own" in found[0].msg
        assert "CACHE_URL" in found[0].hint


def test_the_deploy_check_reports_it():
    with (
        override_settings(CACHES=LOCAL, BOOKING_RATE_LIMIT="30/min"),
        pytest.raises(SystemCheckError, match="baton.W001"),
    ):
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "caches")


@pytest.mark.parametrize(
    ("alerts", "admins", "warned"),
    [([], [], True), (["ops@example.com"], [], False), ([], [("Ops", "ops@example.com")], False)],
    ids=["nobody", "alert-list", "admins"],
)
def test_calendar_alerts_need_a_recipient(alerts, admins, warned):
    """Disconnected calendars and hosts deleting Baton's meetings are told to CALENDAR_ALERT_EMAILS, else
    ADMINS (which no environment variable sets): with neither, nobody was told and nothing said so."""
    from calendars.checks import alerts_have_a_recipient

    with override_settings(CALENDAR_ALERT_EMAILS=alerts, ADMINS=admins):
        found = alerts_have_a_recipient()
    assert [w.id for w in found] == (["baton.W002"] if warned else [])


@pytest.mark.parametrize(
    ("backend", "warned"),
    [
        ("django.core.mail.backends.console.EmailBackend", True),
        ("django.core.mail.backends.smtp.EmailBackend", False),
    ],
    ids=["console", "smtp"],
)
def test_booking_emails_need_a_delivering_backend(backend, warned):
    """The development default (console) in a deployment printed every confirmation to the log; no
    prospect or host got one, and nothing said so."""
    from booking.checks import email_is_delivered

    with override_settings(EMAIL_BACKEND=backend):
        found = email_is_delivered()
    assert [w.id for w in found] == (["baton.W003"] if warned else [])
