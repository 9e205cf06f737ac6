"""A fake calendar host serving secret ICS feeds (text/calendar) with ETag / 304 and redirects."""

from __future__ import annotations

import gzip
import hashlib
import secrets

from tests.fakes.http import FakeServer, Request, Response


class FakeIcsHost(FakeServer):
    def __init__(self, *, tls: tuple[str, str] | None = None):
        super().__init__(tls=tls)
        self.feeds: dict[str, bytes] = {}
        self.compress = False  # gzip the feed when the client accepts it, as Google's and Outlook's hosts do
        self.route("GET", "/feeds/([A-Za-z0-9_-]+)/basic.ics", self._feed)
        self.route("GET", "/moved/([A-Za-z0-9_-]+)", self._moved)

    def publish(self, data: bytes, *, secret: str | None = None) -> str:
        """Serve ``data`` at a new secret URL and return it."""
        secret = secret or secrets.token_urlsafe(18)
        self.feeds[secret] = data
        return f"{self.base_url}/feeds/{secret}/basic.ics"

    def replace(self, url: str, data: bytes) -> None:
        self.feeds[url.rsplit("/", 2)[-2]] = data

    def _feed(self, req: Request) -> Response:
        data = self.feeds.get(req.match.group(1))
        if data is None:
            return Response(404, b"Not Found", {"Content-Type": "text/plain"})
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if req.header("if-none-match") == etag:
            return Response(304, b"", {"ETag": etag})
        headers = {"Content-Type": "text/calendar; charset=utf-8", "ETag": etag}
        if self.compress and "gzip" in req.header("accept-encoding").lower():
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        return Response(200, data, headers)

    def _moved(self, req: Request) -> Response:
        return Response(301, b"", {"Location": f"/feeds/{req.match.group(1)}/basic.ics"})
