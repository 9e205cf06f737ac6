"""Log filters. ``RedactTokens``: manage tokens are bearer credentials (stored only as hashes), and they are
in request paths (``/api/v1/bookings/<token>/…``, ``/manage/<token>``), which Django writes on every 4xx
("Bad Request: /api/v1/bookings/<token>/reschedule") and the development server on every request: such a
line let anyone reading the logs cancel or move that booking."""

from __future__ import annotations

import logging
import re

TOKEN_PATH = re.compile(r"(/(?:api/v1/bookings|manage)/)[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    return TOKEN_PATH.sub(r"\1<token>", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
