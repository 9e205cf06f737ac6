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
import time
import zlib

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError
from urllib3.util.connection import allowed_gai_family

from calendars.errors import InvalidFeed, ProviderUnavailable

PRIVATE = "The calendar URL points to a private or local network address."


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
# Not globally reachable by IANA's registry, yet ``is_global`` says True on the Python this runs on (3.11):
# the local-use NAT64 prefix (RFC 8215: translated by the site's own NAT64, to any IPv4 address, private
# ones included) and SRv6 segment identifiers (RFC 9602).
NOT_GLOBAL = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("5f00::/16"))


def is_public(text: str) -> bool:
    """Whether an address is global, and so is any IPv4 address it carries (IPv4-mapped, 6to4, NAT64:
    ``64:ff9b::7f00:1`` is 127.0.0.1 once translated, yet ``is_global`` says True; Teredo's prefix is not
    global to begin with; nor is anything in ``NOT_GLOBAL``)."""
    address = ipaddress.ip_address(text.split("%")[0])
    if not address.is_global or any(address in network for network in NOT_GLOBAL):
        return False
    if address.version == 6:
        carried = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(v4.is_global for v4 in carried if v4 is not None)
    return True


def public_address(host: str, port: int) -> str:
    """One address of ``host``, all of whose addresses are public (``is_public``); else ``InvalidFeed``."""
    infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    addresses = [info[4][0] for info in infos]
    if not addresses or not all(is_public(a) for a in addresses):
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


# What a feed may be sent in: decoded here, with the size cap applied to the decoded bytes (a small gzip
# body can stand for gigabytes)
ACCEPT_ENCODING = "gzip, deflate"


def read_body(resp: requests.Response, *, limit: int, deadline: float) -> bytes:
    """The body of a streamed response, at most ``limit`` bytes once decoded, read by ``deadline`` (a
    ``time.monotonic()`` instant). requests' timeout bounds each read, not the whole: a host sending a
    byte just inside it each time held a sync worker until ``limit``, for years at one byte a read. Each
    read here is one receive (``read1``), raw, so the deadline is checked between any two of them; gzip
    and deflate are decoded afterwards, to ``limit`` + 1 bytes at most. Raises ``InvalidFeed`` (too large,
    an encoding not asked for) or ``ProviderUnavailable`` (too slow, broken off)."""
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise InvalidFeed(f"The ICS feed is sent in an encoding Baton did not ask for ({encoding[:20]}).")
    raw = bytearray()
    try:
        while True:
            if time.monotonic() > deadline:
                raise ProviderUnavailable("The ICS feed is too slow to send its calendar.")
            chunk = resp.raw.read1(65536, decode_content=False)
            if not chunk:
                break
            raw.extend(chunk)
            if len(raw) > limit:
                raise InvalidFeed("The ICS feed is larger than CALENDAR_ICS_MAX_BYTES.")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise ProviderUnavailable(f"The ICS feed broke off ({exc.__class__.__name__})") from None
    if encoding in ("", "identity"):
        return bytes(raw)
    # gzip (or a zlib stream: 47 takes either header); "deflate" as sent by some servers is raw deflate
    decoder = zlib.decompressobj(47 if encoding != "deflate" or raw[:1] == b"\x78" else -zlib.MAX_WBITS)
    try:
        body = decoder.decompress(bytes(raw), limit + 1)
    except zlib.error:
        raise InvalidFeed("The ICS feed's compressed body cannot be read.") from None
    if len(body) > limit:
        raise InvalidFeed("The ICS feed is larger than CALENDAR_ICS_MAX_BYTES.")
    if not decoder.eof:  # cut off: a full sync from part of a feed would drop the rest's busy times
        raise ProviderUnavailable("The ICS feed broke off (its compressed body is incomplete).")
    return body
