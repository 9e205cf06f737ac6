"""docs/booking-api.md lists every error code the API can answer with, and its HTTP status."""

from __future__ import annotations

import re
from pathlib import Path

from booking import errors
from booking.api.errors import CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "booking-api.md"


def _documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", DOC.read_text(), flags=re.MULTILINE)
    return {code: int(status) for code, status in rows}


def _domain_errors() -> set[type]:
    found, todo = set(), [errors.BookingError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_domain_error_code_is_documented_with_its_status():
    documented = _documented()
    for error in _domain_errors():
        assert documented.get(error.code) == error.status, error.__name__


def test_every_drf_error_code_is_documented():
    documented = _documented()
    for code in [*CODES.values(), "invalid", "malformed_request"]:
        assert code in documented, code


def test_the_api_docs_pages_load_their_scripts_from_this_installation(client):
    """Swagger UI (``/api/docs/``) and ReDoc (``/api/redoc/``) loaded their JavaScript from a CDN's
    ``@latest``: versions changing underneath, third-party code run on Baton's origin, and blank pages on a
    server without internet access. They come from drf-spectacular-sidecar's static files now, each one
    found by the static files finders."""
    import re as regex

    from django.contrib.staticfiles import finders

    for path in ("/api/docs/", "/api/redoc/"):
        page = client.get(path).content.decode()
        assert "cdn.jsdelivr.net" not in page and "fonts.googleapis.com" not in page, path
        assets = regex.findall(r'(?:src|href)="/static/([^"]+)"', page)
        assert assets, path
        assert all(finders.find(asset) for asset in assets), (path, assets)
