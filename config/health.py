"""Health endpoints for load balancers and orchestrators.

``/healthz`` (liveness): the process answers; it touches nothing else, so a database outage does not get
every web process restarted. ``/readyz`` (readiness): the database answers a query and, on PostgreSQL,
accepts writes (a failover to a replica, or a primary made read-only, answers ``SELECT 1`` while every
booking fails), and, with ``CACHE_URL``, the cache answers too (the rate limits count there); 503 naming the
part that failed otherwise (the error itself, or why the database is not writable, is logged, not shown).
Bookings do not need the broker (the outbox delivers later), so it is not checked.

Answered by the first middleware, before Django's host check and HTTPS redirect: a probe comes by the
machine's address over plain HTTP, where ``ALLOWED_HOSTS`` would answer 400 and ``SECURE_SSL_REDIRECT`` 301.
The paths are relative to ``BASE_URL``'s path (``SCRIPT_NAME``), like every other. GET and HEAD only,
never cached.
"""

from __future__ import annotations

import logging

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.http import HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers

logger = logging.getLogger(__name__)

PROBE_KEY = "baton:health"


# Whether this session may write: its transactions are not read-only (``default_transaction_read_only``,
# which a failover to a replica or an operator sets) and the server is not a standby in recovery.
WRITABLE_SQL = "SELECT current_setting('transaction_read_only') = 'off', NOT pg_is_in_recovery()"


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.execute("SELECT 1")
                cursor.fetchone()
                return True
            cursor.execute(WRITABLE_SQL)
            writable, primary = cursor.fetchone()
    except Exception:
        logger.warning("readiness: the database does not answer", exc_info=True)
        return False
    if not (writable and primary):
        why = "transactions are read-only" if primary else "the server is a standby in recovery"
        logger.warning("readiness: the database accepts no writes (%s)", why)
        return False
    return True


def cache_ok() -> bool:
    backend = caches["default"]
    if isinstance(backend, LocMemCache):
        return True  # in the process itself: nothing to reach
    try:
        backend.get(PROBE_KEY)
    except Exception:
        logger.warning("readiness: the cache does not answer", exc_info=True)
        return False
    return True


def live() -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ready() -> JsonResponse:
    checks = {
        "database": "ok" if database_ok() else "unavailable",
        "cache": "ok" if cache_ok() else "unavailable",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )


CHECKS = {"/healthz": live, "/readyz": ready}


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        check = CHECKS.get(request.path_info)
        if check is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        response = check()
        # a failed check was logged as a warning above; Django would log the 503 again as an ERROR, mailed
        # to ADMINS by every probe (every few seconds) for as long as the outage lasts
        response._has_been_logged = True
        add_never_cache_headers(response)
        return response
