"""Guards of the admin's lists against links it cannot read: a date bar's year, month or day Django cannot
turn into a date range (``SafeChangeListMixin``), and a NUL in any parameter of an admin page
(``AdminNulMiddleware``). Each was a 500 (a server error mailed to the admins) for a mangled or hand-edited
link; now a list shows itself with "invalid lookup" (``?e=1``), as for a month of 13, and a NUL is a 400.
"""

from __future__ import annotations

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpResponseBadRequest

ADMIN_PREFIX = "/admin/"  # config.urls (path_info: without the SCRIPT_NAME of a sub-path)
NUL = "\x00"


class SafeChangeList(ChangeList):
    """Django's change list, with a date bar's odd date an invalid lookup: Django catches the ValueError of
    the first day only (``?start__year=99999``), not the one of the day after the range (``9999``: the
    year 10000) nor the OverflowError of a number too big for a date (a year of 20 digits)."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class SafeChangeListMixin:
    """For a ``ModelAdmin`` with a ``date_hierarchy``: its list is a ``SafeChangeList``."""

    def get_changelist(self, request, **kwargs):
        return SafeChangeList


class AdminNulMiddleware:
    """A NUL (U+0000) in a parameter of an admin page is a 400: PostgreSQL refuses one in a query, and a list
    filter's value (``?status__exact=%00``) or an autocomplete box's term goes into the query as it is (a
    500). Other paths pass untouched (the API and the booking pages refuse a NUL themselves)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(ADMIN_PREFIX) and _has_nul(request.GET):
            return HttpResponseBadRequest("Null characters are not allowed.", content_type="text/plain")
        return self.get_response(request)


def _has_nul(params) -> bool:
    return any(NUL in key or any(NUL in value for value in values) for key, values in params.lists())
