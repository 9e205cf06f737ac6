"""HTTP to URLs that users give (ICS feeds), connecting only to public addresses checked at connect time.

Resolving a feed's host name, checking the addresses and then letting requests resolve the name again can
be beaten by DNS rebinding: a name with a short TTL answers a public address to the check and 127.0.0.1 (or
the cloud's metadata address) to the connection. Here each connection resolves its host once, refuses the
answer if any address in it is not global, and connects to the address it checked. TLS still checks the
certificate against the host name (urllib3 takes it from the URL, not from the address connected to).
"""

from __future__ import annotations

import ipaddress
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError
from urllib3.util.connection import allowed_gai_family

from calendars.errors import InvalidFeed

PRIVATE = "The calendar URL points to a private or local network address."


def public_address(host: str, port: int) -> str:
    """One address of ``host``, all of whose addresses are global; else ``InvalidFeed``."""
    infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
        raise InvalidFeed(PRIVATE)
    return addresses[0]


class _Checked:
    """Connect to the checked address of the host; the host name itself stays for TLS and Host."""

    def _new_conn(self):
        name = self._dns_host
        try:
            address = public_address(name, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        self._dns_host = address
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _HTTPConnection(_Checked, HTTPConnection):
    pass


class _HTTPSConnection(_Checked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def public_session() -> requests.Session:
    """A session whose direct connections go to global addresses only (a proxy, if configured, is the
    proxy's business: the URL's host is still checked before the request)."""
    session = requests.Session()
    adapter = PublicOnlyAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
