"""HTTP to URLs that users give (ICS feeds), connecting only to public addresses checked at connect time.

Resolving a feed's host name, checking the addresses and then letting requests resolve the name again can
be beaten by DNS rebinding: a name with a short TTL answers a public address to the check and 127.0.0.1 (or
the cloud's metadata address) to the connection. Here each connection resolves its host once, refuses the
answer if any address in it is not global, and connects to the address it checked. TLS still checks the
certificate against the host name (urllib3 takes it from the URL, not from the address connected to).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import socket
import time
import zlib
from contextvars import ContextVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError
from urllib3.util.connection import allowed_gai_family

from calendars.errors import InvalidFeed, ProviderUnavailable

PRIVATE = "The calendar URL points to a private or local network address."
TOO_SLOW = "The ICS feed is too slow to send its calendar."


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


# The deadline (a ``time.monotonic()`` instant) of the request a ``FeedAdapter`` is sending, if any
_DEADLINE: ContextVar[float | None] = ContextVar("feed_deadline", default=None)


class _ByDeadline(io.RawIOBase):
    """A socket's reader whose every receive waits at most the time left until ``deadline`` (and at most the
    socket's own timeout), and that refuses to read once it has passed. The socket's timeout bounds one
    receive only: a host sending its status line, headers or body a byte at a time, each just inside it,
    would otherwise hold the caller for as long as it liked."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: float):
        super().__init__()
        self._raw, self._sock, self._deadline, self._timeout = raw, sock, deadline, sock.gettimeout()

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buffer) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("past the fetch's deadline")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Response(http.client.HTTPResponse):
    """http.client's response (status line, headers and body), read by the deadline of the request that
    made it, if it has one."""

    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        if (deadline := _DEADLINE.get()) is not None:
            self.fp = io.BufferedReader(_ByDeadline(self.fp.detach(), sock, deadline))


class _HTTPConnection(HTTPConnection):
    response_class = _Response


class _HTTPSConnection(HTTPSConnection):
    response_class = _Response


class _PublicHTTPConnection(_Checked, _HTTPConnection):
    pass


class _PublicHTTPSConnection(_Checked, _HTTPSConnection):
    pass


def _pools(http_connection, https_connection) -> dict:
    return {
        "http": type("_HTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection}),
        "https": type("_HTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection}),
    }


PUBLIC_POOLS = _pools(_PublicHTTPConnection, _PublicHTTPSConnection)
ANY_POOLS = _pools(_HTTPConnection, _HTTPSConnection)


class FeedAdapter(HTTPAdapter):
    """Connects to public addresses only (``_Checked``) if ``public_only``, and has every response it sends
    for, status line and headers included, read by ``deadline`` (a ``time.monotonic()`` instant; then
    ``requests.Timeout`` or, reading the body, ``urllib3``'s ``ReadTimeoutError``)."""

    def __init__(self, *, public_only: bool, deadline: float | None = None):
        self.public_only, self.deadline = public_only, deadline
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = PUBLIC_POOLS if self.public_only else ANY_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        """Through a proxy (``HTTPS_PROXY``…): the addresses are the proxy's business, the deadline still
        ours (the proxy's connections read responses as ``_Response`` does)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = ANY_POOLS
        return manager

    def send(self, request, *args, **kwargs):
        token = _DEADLINE.set(self.deadline)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            _DEADLINE.reset(token)


def feed_session(*, public_only: bool = True, deadline: float | None = None) -> requests.Session:
    """A session for a feed's URL: its direct connections go to global addresses only if ``public_only`` (a
    proxy, if configured, is the proxy's business: the URL's host is still checked before the request), and
    whatever it receives directly is received by ``deadline`` (``FeedAdapter``)."""
    session = requests.Session()
    adapter = FeedAdapter(public_only=public_only, deadline=deadline)
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
                raise ProviderUnavailable(TOO_SLOW)
            chunk = resp.raw.read1(65536, decode_content=False)
            if not chunk:
                break
            raw.extend(chunk)
            if len(raw) > limit:
                raise InvalidFeed("The ICS feed is larger than CALENDAR_ICS_MAX_BYTES.")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if time.monotonic() >= deadline:  # a receive cut short by the deadline (``FeedAdapter``)
            raise ProviderUnavailable(TOO_SLOW) from None
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
