"""Rate limits of the public endpoints per client address (default cache): ``BOOKING_RATE_LIMIT`` for the
POSTs, ``API_READ_RATE_LIMIT`` for the GETs.

The rate is read from settings on every request (so tests and operators can change it); an empty value
turns the limit off. The client address is the socket address, or the X-Forwarded-For entry added by the
last of ``NUM_PROXIES`` trusted proxies.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class BookingRateThrottle(SimpleRateThrottle):
    """The public POSTs' limit."""

    scope = "booking"
    setting = "BOOKING_RATE_LIMIT"
    methods = ("POST",)

    def get_rate(self):
        return getattr(settings, self.setting) or None

    def allow_request(self, request, view):
        if request.method not in self.methods:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ReadRateThrottle(BookingRateThrottle):
    """The public GETs' limit, counted apart."""

    scope = "read"
    setting = "API_READ_RATE_LIMIT"
    methods = ("GET", "HEAD")
