"""ICS feeds: recorded fixtures (recurrences across DST, EXDATE, RECURRENCE-ID moves, all-day and floating
events, X-WR-TIMEZONE exports) and the fetching rules (conditional GET, redirects, SSRF, size, bad feeds)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from zoneinfo import ZoneInfo

import pytest
import time_machine
from calendars_harness import fixture_bytes

from calendars.errors import InvalidFeed, ProviderUnavailable
from calendars.providers.ics import IcsProvider, busy_events, feed_label, normalise_url, parse
from calendars.providers.safe_http import is_public
from tests.fakes.http import make_self_signed_cert
from tests.fakes.ics import FakeIcsHost

UTC = dt.UTC
MARCH = (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 30, tzinfo=UTC))


def z(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def expand(name: str, zone: str) -> list[tuple[dt.datetime, dt.datetime]]:
    events = busy_events(parse(fixture_bytes(name)), MARCH, ZoneInfo(zone))
    return sorted((e.start, e.end) for e in events)


def test_weekly_meeting_keeps_local_time_across_the_dst_change():
    spans = [
        s for s in expand("recurring_dst.ics", "America/Chicago") if s[1] - s[0] == dt.timedelta(hours=1)
    ]
    # 09:00 New York: 14:00 UTC in EST (2 March), 13:00 UTC in EDT from 8 March on
    assert (z(2026, 3, 2, 14), z(2026, 3, 2, 15)) in spans
    assert (z(2026, 3, 9, 13), z(2026, 3, 9, 14)) in spans
    assert (z(2026, 3, 30, 13), z(2026, 3, 30, 14)) in spans


def test_exdate_removes_one_instance_and_recurrence_id_moves_another():
    spans = expand("recurring_dst.ics", "America/Chicago")
    assert not [s for s in spans if s[0].date() == dt.date(2026, 3, 16)]  # EXDATE
    assert not [s for s in spans if s[0] == z(2026, 3, 23, 13)]  # moved away from the 23rd …
    assert (z(2026, 3, 24, 18), z(2026, 3, 24, 19)) in spans  # … to 14:00 EDT on the 24th
    weekly = [s for s in spans if s[1] - s[0] == dt.timedelta(hours=1)]
    assert len(weekly) == 5  # COUNT=6 minus the EXDATE


def test_daily_berlin_standup_crosses_the_european_dst_change():
    spans = [
        s for s in expand("recurring_dst.ics", "America/Chicago") if s[1] - s[0] == dt.timedelta(minutes=15)
    ]
    assert spans[:2] == [
        (z(2026, 3, 26, 8, 30), z(2026, 3, 26, 8, 45)),
        (z(2026, 3, 27, 8, 30), z(2026, 3, 27, 8, 45)),
    ]
    assert (z(2026, 3, 29, 7, 30), z(2026, 3, 29, 7, 45)) in spans  # CEST from 29 March
    assert spans[-1] == (z(2026, 3, 31, 7, 30), z(2026, 3, 31, 7, 45))  # UNTIL is inclusive
    assert len(spans) == 6


def test_transparent_events_do_not_block():
    spans = expand("recurring_dst.ics", "America/Chicago")
    assert not [s for s in spans if s[0].date() == dt.date(2026, 3, 3)]


def test_all_day_and_floating_events_use_the_reps_zone():
    spans = expand("allday_floating.ics", "America/Los_Angeles")
    assert (z(2026, 3, 10, 7), z(2026, 3, 12, 7)) in spans  # two whole local days, PDT
    assert (z(2026, 3, 16, 7), z(2026, 3, 17, 7)) in spans  # DATE without DTEND: one day
    assert (z(2026, 3, 13, 22), z(2026, 3, 13, 23)) in spans  # floating 15:00 local
    gym = [s for s in spans if s[1] - s[0] == dt.timedelta(hours=1) and s[0].hour in (14, 15)]
    assert gym == [
        (z(2026, 3, 5, 15), z(2026, 3, 5, 16)),
        (z(2026, 3, 12, 14), z(2026, 3, 12, 15)),
        (z(2026, 3, 19, 14), z(2026, 3, 19, 15)),
        (z(2026, 3, 26, 14), z(2026, 3, 26, 15)),
    ]
    # the same floating events read in Berlin land elsewhere
    berlin = expand("allday_floating.ics", "Europe/Berlin")
    assert (z(2026, 3, 13, 14), z(2026, 3, 13, 15)) in berlin


def test_cancelled_momentary_and_batons_own_events_are_skipped(settings):
    settings.ICAL_UID_DOMAIN = "book.example.com"
    spans = expand("allday_floating.ics", "America/Los_Angeles")
    assert not [s for s in spans if s[0] in (z(2026, 3, 12, 17), z(2026, 3, 12, 19), z(2026, 3, 12, 8))]
    # another installation's invitation (the rep booked a vendor's Baton) is a meeting like any other
    assert (z(2026, 3, 12, 21), z(2026, 3, 12, 21, 30)) in spans
    assert len(spans) == 8
    settings.ICAL_UID_DOMAIN = "baton.elsewhere.example"  # then this installation's own UID is foreign
    assert (z(2026, 3, 12, 19), z(2026, 3, 12, 19, 30)) in expand(
        "allday_floating.ics", "America/Los_Angeles"
    )


def test_google_exports_with_x_wr_timezone_follow_local_time():
    spans = expand("google_export_xwr.ics", "Europe/London")
    assert spans[0] == (z(2026, 3, 23, 10), z(2026, 3, 23, 11))
    assert (z(2026, 3, 29, 9), z(2026, 3, 29, 10)) in spans  # 10:00 BST
    assert len(spans) == 10


def test_instance_ids_are_stable_across_polls():
    first = busy_events(parse(fixture_bytes("recurring_dst.ics")), MARCH, ZoneInfo("UTC"))
    again = busy_events(parse(fixture_bytes("recurring_dst.ics")), MARCH, ZoneInfo("UTC"))
    assert sorted(e.external_id for e in first) == sorted(e.external_id for e in again)
    assert len({e.external_id for e in first}) == len(first)


def test_unchanged_feed_is_answered_304(fake_ics):
    url = fake_ics.publish(fixture_bytes("recurring_dst.ics"))
    provider = IcsProvider({"url": url}, zone=ZoneInfo("UTC"))
    first = provider.sync("feed", "", window=MARCH, zone=ZoneInfo("UTC"))
    assert first.full and len(first.upserts) == 11
    again = provider.sync("feed", first.next_state, window=MARCH, zone=ZoneInfo("UTC"))
    assert again.unchanged
    assert fake_ics.requests[-1].header("if-none-match")
    fake_ics.replace(url, fixture_bytes("google_export_xwr.ics"))
    changed = provider.sync("feed", again.next_state, window=MARCH, zone=ZoneInfo("UTC"))
    assert not changed.unchanged and len(changed.upserts) == 10


def test_redirects_are_followed(fake_ics):
    url = fake_ics.publish(fixture_bytes("google_export_xwr.ics"), secret="abc123")
    moved = url.replace("/feeds/abc123/basic.ics", "/moved/abc123")
    result = IcsProvider({"url": moved}).sync("feed", "", window=MARCH, zone=ZoneInfo("UTC"))
    assert len(result.upserts) == 10


def test_private_addresses_are_refused_unless_allowed(settings, fake_ics):
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = False
    url = fake_ics.publish(fixture_bytes("google_export_xwr.ics"))
    with pytest.raises(InvalidFeed, match="private or local"):
        IcsProvider({"url": url}).list_calendars()
    assert fake_ics.requests == []


def test_not_a_calendar_and_too_big_feeds_are_refused(settings, fake_ics):
    with pytest.raises(InvalidFeed, match="iCalendar"):
        IcsProvider({"url": fake_ics.publish(b"<html>login</html>")}).list_calendars()
    settings.CALENDAR_ICS_MAX_BYTES = 10_000
    big = fixture_bytes("recurring_dst.ics").replace(b"SUMMARY:EMEA stand-up", b"SUMMARY:" + b"x" * 20_000)
    with pytest.raises(InvalidFeed, match="larger"):
        IcsProvider({"url": fake_ics.publish(big)}).list_calendars()


def test_a_compressed_feed_is_read_and_its_size_capped_decoded(settings, fake_ics):
    """Hosts send feeds gzip-compressed when asked (Baton asks for gzip or deflate only); the size cap
    applies to the decoded calendar: 20 kB that compress to a few hundred bytes are still too large."""
    fake_ics.compress = True
    url = fake_ics.publish(fixture_bytes("google_export_xwr.ics"))
    result = IcsProvider({"url": url}).sync("feed", "", window=MARCH, zone=ZoneInfo("UTC"))
    assert len(result.upserts) == 10 and fake_ics.requests[-1].header("accept-encoding") == "gzip, deflate"
    settings.CALENDAR_ICS_MAX_BYTES = 10_000
    big = fixture_bytes("recurring_dst.ics").replace(b"SUMMARY:EMEA stand-up", b"SUMMARY:" + b"x" * 20_000)
    with pytest.raises(InvalidFeed, match="larger"):
        IcsProvider({"url": fake_ics.publish(big)}).list_calendars()


class DripHost:
    """A feed host on loopback that sends ``head`` at once (by default a status line and headers saying
    ``length`` bytes follow), then ``length`` bytes of ``drip``, one every ``interval``."""

    def __init__(self, *, length: int, interval: float, head: bytes | None = None, drip: bytes = b" "):
        self.length, self.interval, self.drip = length, interval, drip
        self.head = head or (
            f"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/feed.ics"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(self.head)
                for _ in range(self.length):
                    if self.stop.wait(self.interval):
                        return
                    conn.sendall(self.drip)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


def given_up(host: DripHost, url: str) -> float:
    """Fetch ``url`` with a 1 s timeout (a 2 s deadline) while ``host`` drips: the fetch gives up as too
    slow. Returns how long it took."""
    from calendars.providers.ics import fetch

    began = time.monotonic()
    try:
        with pytest.raises(ProviderUnavailable, match="too slow"):
            fetch(url, timeout=1)
    finally:
        host.close()
    return time.monotonic() - began


def test_a_feed_that_drips_its_body_is_given_up_on(settings):
    """requests' timeout bounds each read, not the whole fetch: a host sending a byte just inside it each
    time held a sync worker until CALENDAR_ICS_MAX_BYTES (years at a byte a read), and a few such feeds
    every worker. A fetch now gives up after twice the timeout. Here: a 1 s timeout, a byte every 0.25 s."""
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = True  # the host is on loopback
    host = DripHost(length=80, interval=0.25)  # 20 s of body at that pace
    assert given_up(host, host.url) < 8  # given up after ~2 s (a busy machine: room), not 20


def test_a_feed_that_drips_its_headers_is_given_up_on(settings):
    """The deadline covers the status line and headers too, not the body alone: http.client reads up to
    100 header lines of 64 KiB each, every receive bounded only by the timeout, so a host sending a header
    byte just inside it would hold the worker (or the rep's request adding the feed) as long as it liked.
    Here: a 1 s timeout (a 2 s deadline), a header byte every 0.25 s for 12 s."""
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = True  # the host is on loopback
    host = DripHost(length=48, interval=0.25, head=b"HTTP/1.1 200 OK\r\nX-Slow: ", drip=b"a")
    elapsed = given_up(host, host.url)
    assert elapsed < 7, f"the fetch took {elapsed:.1f} s although its deadline was 2 s"


def test_a_proxy_that_drips_the_headers_is_given_up_on_at_the_deadline(settings, monkeypatch):
    """Through an HTTP(S) proxy from the environment (docs/calendars.md) requests makes its own connection
    pools: the deadline holds there too (the status line and headers were read without it). Here the
    dripping host plays the proxy: a 1 s timeout (2 s deadline), a header byte every 0.25 s for 12 s."""
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = True  # no DNS check of the (unresolvable) feed host
    proxy = DripHost(length=48, interval=0.25, head=b"HTTP/1.1 200 OK\r\nX-Slow: ", drip=b"a")
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy.url.removesuffix("/feed.ics"))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    elapsed = given_up(proxy, "http://feed.example.invalid/feed.ics")
    assert elapsed < 7, f"the fetch took {elapsed:.1f} s although its deadline was 2 s"


def test_a_chain_of_slow_redirects_is_given_up_on_at_the_deadline(fake_ics):
    """Each hop answering just inside the timeout does not stretch the fetch: the deadline is for the whole
    chain. Here: a 1 s timeout (a 2 s deadline), each redirect answered after 0.9 s; four hops (the most
    followed) would take 3.6 s."""
    from calendars.providers.ics import fetch

    redirect = {"status": 302, "headers": {"Location": "/loop/again"}}
    fake_ics.add_fault("GET", "/loop/.*", **redirect, delay=0.9, times=-1)
    began = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="too slow"):
        fetch(f"{fake_ics.base_url}/loop/start", timeout=1)
    assert time.monotonic() - began < 3.4  # ~2 s; not the 3.6 s of four hops
    assert len(fake_ics.requests_to("GET", "/loop/.*")) in (2, 3)  # the third is cut short (or not sent)


def test_a_missing_feed_is_a_provider_failure(fake_ics):
    with pytest.raises(ProviderUnavailable, match="404"):
        IcsProvider({"url": f"{fake_ics.base_url}/feeds/nope/basic.ics"}).list_calendars()


def test_urls_are_normalised_and_only_the_host_is_shown():
    assert normalise_url(" webcal://p01-calendars.icloud.com/published/2/SECRET ") == (
        "https://p01-calendars.icloud.com/published/2/SECRET"
    )
    assert (
        feed_label("https://calendar.google.com/calendar/ical/x/private-SECRET/basic.ics")
        == "calendar.google.com"
    )
    for bad in ("ftp://example.com/x.ics", "not a url", "file:///etc/passwd"):
        with pytest.raises(InvalidFeed):
            normalise_url(bad)
    # each was a 500 on the connect page (ValueError from the port, UnicodeError from the lookup)
    for bad, says in [
        ("https://example.com:99999/x.ics", "port"),
        ("https://example.com:abc/x.ics", "port"),
        ("https://" + "a" * 64 + ".example.com/x.ics", "host name"),
        ("https://a..example.com/x.ics", "host name"),
    ]:
        with pytest.raises(InvalidFeed, match=says):
            normalise_url(bad)


def rebinding_resolver(monkeypatch, host: str, first: str) -> list[str]:
    """``host`` answers ``first`` (a public address) to the first lookup and 127.0.0.1 to every later one,
    as a rebinding DNS server with a zero TTL does; other names resolve as usual."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def resolve(name, port, *args, **kwargs):
        if name != host:
            return real(name, port, *args, **kwargs)
        answers.append(first if not answers else "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[-1], port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return answers


def test_a_host_that_rebinds_to_loopback_after_the_check_is_never_connected_to(
    settings, fake_ics, monkeypatch
):
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = False
    url = fake_ics.publish(fixture_bytes("google_export_xwr.ics"))
    rebound = url.replace("127.0.0.1", "feeds.rebind.example")
    answers = rebinding_resolver(monkeypatch, "feeds.rebind.example", "93.184.216.34")
    with pytest.raises(InvalidFeed, match="private or local"):
        IcsProvider({"url": rebound}).list_calendars()
    assert answers == ["93.184.216.34", "127.0.0.1"]  # the check, then the connection's own lookup
    assert fake_ics.requests == []  # before: the second lookup's 127.0.0.1 was connected to and read


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_public_host_is_connected_to_at_the_address_that_was_checked(
    scheme, settings, fake_ics, monkeypatch, tmp_path, request
):
    settings.CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = False
    if scheme == "https":  # the certificate names the host only: TLS checks the name, not the address
        cert, key = make_self_signed_cert(tmp_path, "feeds.public.example")
        fake_ics = FakeIcsHost(tls=(cert, key)).start()
        request.addfinalizer(fake_ics.stop)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    url = fake_ics.publish(fixture_bytes("google_export_xwr.ics"))
    port = int(url.split("127.0.0.1:")[1].split("/")[0])
    connected = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        connected.append(address)
        if address == ("93.184.216.34", port):  # stand-in for the public host: the fake on loopback
            return real_connect(sock, ("127.0.0.1", port))
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda name, p, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", p))],
    )
    calendars = IcsProvider({"url": url.replace("127.0.0.1", "feeds.public.example")}).list_calendars()
    assert len(calendars) == 1 and connected == [("93.184.216.34", port)]
    assert fake_ics.requests[0].header("host") == f"feeds.public.example:{port}"


@pytest.mark.parametrize(
    "address,public",
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # the cloud's metadata service
        ("100.64.0.1", False),  # shared address space (carrier NAT, Kubernetes)
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1: is_global said True
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254: is_global said True
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1: is_global said True
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64 (RFC 8215): is_global said True
        ("64:ff9b:1::808:808", False),  # translated by the site's own NAT64, whatever address it carries
        ("5f00::1", False),  # SRv6 segment identifiers (RFC 9602), not globally reachable
    ],
)
def test_addresses_that_carry_a_private_ipv4_address_are_not_public(address, public):
    assert is_public(address) is public


FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:one-off\r\nDTSTART:20260310T100000Z\r\nDTEND:20260310T110000Z\r\nEND:VEVENT\r\n"
    "{series}END:VCALENDAR\r\n"
)
# a weekly 1:1 whose rule has a typo (UNTL): recurring-ical-events cannot read the series
TYPO = (
    "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTART:20260305T140000Z\r\nDTEND:20260305T150000Z\r\n"
    "RRULE:FREQ=WEEKLY;UNTL=20261023;BYDAY=TH\r\nEND:VEVENT\r\n"
)
WEEKLY = TYPO.replace("UNTL", "UNTIL")


def test_a_series_that_cannot_be_read_is_left_out_and_reported():
    skipped: list[str] = []
    events = busy_events(parse(FEED.format(series=TYPO).encode()), MARCH, ZoneInfo("UTC"), skipped=skipped)
    assert [(e.start, e.end) for e in events] == [(z(2026, 3, 10, 10), z(2026, 3, 10, 11))]
    assert len(skipped) == 1 and "UNTL=20261023" in skipped[0]
    skipped.clear()
    assert len(busy_events(parse(FEED.format(series=WEEKLY).encode()), MARCH, ZoneInfo("UTC"))) == 9
    busy_events(parse(FEED.format(series=WEEKLY).encode()), MARCH, ZoneInfo("UTC"), skipped=skipped)
    assert skipped == []


def test_the_sync_says_when_a_series_is_not_counted(make_rep, ics_connection, fake_ics):
    from calendars.models import Calendar
    from calendars.services.sync import calendar_sync

    connection = ics_connection(make_rep(timezone="UTC"), FEED.format(series=TYPO).encode())
    calendar = Calendar.objects.get(connection=connection)
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=UTC)):
        assert calendar_sync(calendar_id=calendar.pk) == "full"
        assert connection.rep.busy_intervals.count() == 1  # the one-off event still counts
        calendar.refresh_from_db()
        connection.refresh_from_db()
        assert connection.status == "connected" and calendar.last_synced_at is not None
        for row in (calendar, connection):
            assert row.last_error.startswith("Synced, but repeating events in this feed that cannot be read")
            assert "UNTL=20261023" in row.last_error
        assert calendar_sync(calendar_id=calendar.pk) == "unchanged"  # 304: the same feed, the same warning
        calendar.refresh_from_db()
        assert "UNTL=20261023" in calendar.last_error
        (secret,) = fake_ics.feeds  # the rep fixes the rule
        fake_ics.feeds[secret] = FEED.format(series=WEEKLY).encode()
        assert calendar_sync(calendar_id=calendar.pk) == "full"
        calendar.refresh_from_db()
        connection.refresh_from_db()
        assert calendar.last_error == connection.last_error == ""
        assert connection.rep.busy_intervals.count() > 1  # the one-off, and the weekly series


def test_a_compressed_feed_cut_off_is_not_taken_for_the_whole_feed():
    """A gzip body cut short decompresses to part of the feed; taken as complete, a full sync would drop
    the busy times of the rest. It is a broken-off fetch (the last busy times stay)."""
    import gzip
    import io

    import requests
    import urllib3

    from calendars.providers.safe_http import read_body

    whole = gzip.compress(fixture_bytes("recurring_dst.ics"))

    def response(body: bytes) -> requests.Response:
        resp = requests.Response()
        resp.headers["Content-Encoding"] = "gzip"
        resp.raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False, decode_content=False)
        return resp

    deadline = time.monotonic() + 10
    assert read_body(response(whole), limit=10**6, deadline=deadline) == fixture_bytes("recurring_dst.ics")
    with pytest.raises(ProviderUnavailable, match="incomplete"):
        read_body(response(whole[: len(whole) // 2]), limit=10**6, deadline=deadline)
