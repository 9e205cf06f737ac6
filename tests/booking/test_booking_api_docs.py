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
