"""Log filters. ``RedactTokens``: manage tokens are bearer credentials (stored only as hashes), and they are
in request paths (``/api/v1/bookings/<token>/…``, ``/manage/<token>``), which Django writes on every 4xx
("Bad Request: /api/v1/bookings/<token>/reschedule") and the development server on every request: such a
line let anyone reading the logs cancel or move that booking. ``RedactingExceptionReporter`` does the same
for the error reports Django mails to ``ADMINS`` (and the DEBUG error page): the URL, request META and
frame variables (a view's ``token``) of a failed request, and the other secrets a request brings (a rep's
secret ICS address, an OAuth code)."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus, urlsplit

from django.utils.html import escape
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
    """Django's error report (``DEFAULT_EXCEPTION_REPORTER``) with secrets replaced wherever they appear (the
    URL, META, every frame's locals: a service's or a library's too, which no view decorator reaches): manage
    token paths, the request's own ``token`` URL argument, the values of the POST parameters its view marked
    ``sensitive_post_parameters`` (the rep's secret ICS address) and an OAuth callback's ``code``."""

    def _secrets(self) -> dict[str, str]:
        """Each secret text, escaped for the HTML report as well, with what replaces it."""
        request = self.request
        if request is None:
            return {}
        match = getattr(request, "resolver_match", None)
        token = str((match.kwargs if match else {}).get("token") or "")
        found = {token: "<token>"} if len(token) >= 16 else {}  # a real one (a bogus one could be "calendar")
        code = request.GET.get("code", "")
        # as it came too: the report quotes the URL and QUERY_STRING encoded (Google's "4/…" as "4%2F…")
        found |= dict.fromkeys({code, quote(code, safe=""), quote_plus(code), quote(code)}, "<code>")
        for value in _sensitive_posted(request):
            found[value] = "<secret>"
            try:  # a URL's path and query alone too: the service stores webcal:// as https://
                netloc = urlsplit(value).netloc
            except ValueError:
                netloc = ""
            if netloc:
                found[value.split("//" + netloc, 1)[-1]] = "<secret>"
        # a short value could match innocent text (a feed's path is longer, so is an OAuth code)
        found = {text: mark for text, mark in found.items() if len(text) >= 8}
        return found | {escape(text): mark for text, mark in found.items()}

    def _redact(self, text: str) -> str:
        for secret, mark in sorted(self._secrets().items(), key=lambda item: -len(item[0])):
            text = text.replace(secret, mark)
        return redact(text)

    def get_traceback_html(self) -> str:
        return self._redact(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return self._redact(super().get_traceback_text())


def _sensitive_posted(request) -> list[str]:
    """The values of the POST parameters the view marked ``sensitive_post_parameters`` (all of them for a
    bare ``sensitive_post_parameters()``, as the sign-in pages have it)."""
    names = getattr(request, "sensitive_post_parameters", None)
    if not names:
        return []
    try:
        posted = request.POST
    except Exception:  # an unreadable body (Django's report says so): nothing of it is shown
        return []
    keys = posted.keys() if names == "__ALL__" else names
    return [value.strip() for name in keys for value in posted.getlist(name)]
