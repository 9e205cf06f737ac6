"""Rate limits of the public endpoints per client address (default cache): ``BOOKING_RATE_LIMIT`` for the
POSTs, ``API_READ_RATE_LIMIT`` for the GETs.

The rate is read from settings on every request (so tests and operators can change it); an empty value
turns the limit off. The client address is the socket address, or the X-Forwarded-For entry added by the
last of ``NUM_PROXIES`` trusted proxies (``client_ident``, which the sign-in limit shares).

A limit counts in fixed windows (``30/min``: at most 30 requests in each calendar minute), one counter per
client and window, raised together with its expiry in one Lua call in Redis (``count_in_window``; other
caches: ``add`` then ``incr``): atomic, so workers serving one client at the same time share one count
(DRF's ``SimpleRateThrottle`` read the client's history, appended to it and wrote it back, and concurrent
requests overwrote each other's entries). A request past
the limit is answered 429 with ``Retry-After`` the seconds left in the window.

When the cache cannot be reached (Redis restarting or down) the request is let through uncounted and the
failure logged (``count_failed``): the limits protect the service, they must not take it down.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from config.env import windowed_rate

logger = logging.getLogger(__name__)

IPV6_PREFIX = 64  # what one IPv6 client (down to a home connection) is given, and picks addresses from
FAILURE_LOG_SECONDS = 60  # a cache down logs once a minute per process, not once per request
_failure_logged_at = -math.inf


def client_ident(request) -> str:
    """The client as the limits count it (a DRF or a Django request): an IPv4 address, or an IPv6 one's /64
    (a client picks any of its 2^64 addresses per request, privacy addresses do so on their own, so the
    exact address let one client escape every limit). An IPv4-mapped IPv6 address is its IPv4 address; a
    value that is no address (a proxy's odd header) is counted as it came."""
    ident = BaseThrottle().get_ident(request)
    try:
        address = ipaddress.ip_address(ident)
    except ValueError:
        return ident
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        network = int(address) >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX)  # (drops a %zone as well)
        return f"{ipaddress.IPv6Address(network)}/{IPV6_PREFIX}"
    return str(address)


# One round trip, atomic: the increment and the counter's expiry together. Django's ``incr`` is "EXISTS, then
# INCRBY": a key that expired between the two came back from INCRBY without an expiry, and lived for good.
_REDIS_COUNT = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""
# a decrement only of a counter that is still there (a window over is not brought back as -1, for good)
_REDIS_UNCOUNT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return false
"""


def _redis(key: str):
    """The Redis client and the full key of ``key`` when the default cache is Redis, else None."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    full = backend.make_and_validate_key(key)
    return backend._cache.get_client(full, write=True), full


def count_in_window(key: str, window: int) -> int:
    """One more on ``key``'s counter (created for ``window`` seconds) and its new value. Atomic in Redis:
    every worker adds to one count, and the counter always has its expiry. Raises what the cache raises
    when it cannot be reached."""
    redis = _redis(key)
    if redis is not None:
        client, full = redis
        return int(client.eval(_REDIS_COUNT, 1, full, 1, window))
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=window)
        return 1


def uncount(key: str) -> None:
    """One less on ``key``'s counter, if it is still there (its window not over). Raises what the cache
    raises when it cannot be reached."""
    redis = _redis(key)
    if redis is not None:
        client, full = redis
        client.eval(_REDIS_UNCOUNT, 1, full)
        return
    with contextlib.suppress(ValueError):  # the window is over
        cache.decr(key)


def count_failed(limit: str, exc: Exception) -> None:
    """Log that ``limit`` could not count (the request passes unlimited): at ERROR with the exception, once
    per ``FAILURE_LOG_SECONDS`` in a process, so that a Redis outage does not log every request."""
    global _failure_logged_at  # when this process last logged a failure
    now = time.monotonic()
    if now - _failure_logged_at < FAILURE_LOG_SECONDS:
        return
    _failure_logged_at = now
    logger.error(
        "%s not enforced: the cache could not count (%s: %s); requests pass unlimited until it answers "
        "(logged once a minute)",
        limit,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


class BookingRateThrottle(BaseThrottle):
    """The public POSTs' limit."""

    scope = "booking"
    setting = "BOOKING_RATE_LIMIT"
    methods = ("POST",)

    def __init__(self):
        self.retry_after: float | None = None

    def allow_request(self, request, view):
        if request.method not in self.methods:
            return True
        rate = windowed_rate(self.setting, getattr(settings, self.setting))
        if rate is None:
            return True
        allowed, window = rate
        now = time.time()
        key = f"throttle_{self.scope}_{self.get_ident(request)}:{window}:{int(now // window)}"
        try:
            count = count_in_window(key, window)
        except Exception as exc:  # whatever the cache backend raises: fail open, logged
            count_failed(self.setting, exc)
            return True
        if count <= allowed:
            return True
        self.retry_after = window - now % window
        return False

    def wait(self):
        """Seconds until the client's window ends (``Retry-After``, rounded up by DRF)."""
        return self.retry_after

    def get_ident(self, request):
        return client_ident(request)


class ReadRateThrottle(BookingRateThrottle):
    """The public GETs' limit, counted apart."""

    scope = "read"
    setting = "API_READ_RATE_LIMIT"
    methods = ("GET", "HEAD")
