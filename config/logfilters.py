"""Log filters. ``RedactTokens``: manage tokens are bearer credentials (stored only as hashes), and they are
in request paths (``/api/v1/bookings/<token>/…``, ``/manage/<token>``), which Django writes on every 4xx
("Bad Request: /api/v1/bookings/<token>/reschedule") and the development server on every request: such a
line let anyone reading the logs cancel or move that booking. ``RedactingExceptionReporter`` does the same
for the error reports Django mails to ``ADMINS`` (and the DEBUG error page): the URL, request META and
frame variables (a view's ``token``) of a failed request."""

from __future__ import annotations

import logging
import re

from django.views.debug import ExceptionReporter

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


class RedactingExceptionReporter(ExceptionReporter):
    """Django's error report (``DEFAULT_EXCEPTION_REPORTER``) with manage tokens replaced: token paths
    anywhere, and the request's own ``token`` URL argument wherever it appears (a frame's locals)."""

    def _redact(self, text: str) -> str:
        match = getattr(self.request, "resolver_match", None)
        token = str((match.kwargs if match else {}).get("token") or "")
        if len(token) >= 16:  # a real one (a short bogus value could match innocent text)
            text = text.replace(token, "<token>")
        return redact(text)

    def get_traceback_html(self) -> str:
        return self._redact(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return self._redact(super().get_traceback_text())
