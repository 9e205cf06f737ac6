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
    with override_settings(CACHES=caches, BOOKING_RATE_LIMIT=limit, API_READ_RATE_LIMIT=limit):
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
