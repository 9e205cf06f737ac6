"""Rate limits of the public endpoints per client address (default cache): ``BOOKING_RATE_LIMIT`` for the
POSTs, ``API_READ_RATE_LIMIT`` for the GETs.

The rate is read from settings on every request (so tests and operators can change it); an empty value
turns the limit off. The client address is the socket address, or the X-Forwarded-For entry added by the
last of ``NUM_PROXIES`` trusted proxies (``client_ident``, which the sign-in limit shares).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

IPV6_PREFIX = 64  # what one IPv6 client (down to a home connection) is given, and picks addresses from


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

    def get_ident(self, request):
        return client_ident(request)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ReadRateThrottle(BookingRateThrottle):
    """The public GETs' limit, counted apart."""

    scope = "read"
    setting = "API_READ_RATE_LIMIT"
    methods = ("GET", "HEAD")
