"""The API's JSON parser: every unreadable body is a ``ParseError`` (``400 malformed_request``)."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """DRF's ``JSONParser`` turns only ``ValueError`` into a ``ParseError``; brackets nested past the
    reader's depth (``[[[[…`` a thousand deep: a 2 KB body) raise ``RecursionError``, and every public POST
    answered such a body with a 500 (and mailed the admins a traceback)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
