"""Absolute links for what leaves the request (e-mails, OAuth redirect URIs, alerts): ``BASE_URL`` names the
installation, a sub-path deployment's prefix included (``https://example.com/baton``), so a path from
``reverse()`` is joined without the script prefix that ``reverse()`` adds inside a request (``/baton/…``)."""

from __future__ import annotations

from django.conf import settings
from django.urls import get_script_prefix, reverse


def absolute_url(viewname: str, args=()) -> str:
    path, prefix = reverse(viewname, args=args), get_script_prefix()
    if path.startswith(prefix):
        path = "/" + path[len(prefix) :]
    return settings.BASE_URL + path
