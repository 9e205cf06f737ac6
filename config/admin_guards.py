"""Guards of the admin's lists against links it cannot read: a date bar's year, month or day Django cannot
turn into a date range (``SafeChangeListMixin``), a NUL in any parameter of an admin page
(``AdminNulMiddleware``), and a list action's selection that is no id (``AdminSelectionMiddleware``). Each
was a 500 (a server error mailed to the admins) for a mangled or hand-edited link or form; now a list shows
itself with "invalid lookup" (``?e=1``), as for a month of 13, a NUL is a 400, and a selection without an id
is Django's "Items must be selected" on the list.
"""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpResponseBadRequest

ADMIN_PREFIX = "/admin/"  # config.urls (path_info: without the SCRIPT_NAME of a sub-path)
NUL = "\x00"
MAX_ID = 2**63 - 1  # BigAutoField's (DEFAULT_AUTO_FIELD); Django's own models' AutoField ids are below it


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


class AdminSelectionMiddleware:
    """A list action posted to an admin page keeps, of its selection (``_selected_action``), only the ids
    its rows can have: whole positive numbers in range. Django filters the list by ``pk__in`` with the
    values as posted, and one that is no number (``12abc``, ``1.5``, empty, a NUL: a hand-edited or replayed
    form, a scanner) raised ValueError, one too big for the column OverflowError (SQLite): a 500. Nothing
    left: the list, with Django's "Items must be selected" message. Every model the admin shows has an
    integer key (``DEFAULT_AUTO_FIELD``; Django's users and groups too)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info.startswith(ADMIN_PREFIX):
            selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
            kept = [value for value in selected if _is_id(value)]
            if kept != selected:
                post = request.POST.copy()
                post.setlist(ACTION_CHECKBOX_NAME, kept)
                request.POST = post
        return self.get_response(request)


def _is_id(value: str) -> bool:
    # ASCII digits only (``int`` takes " 12", "1_2" and other scripts' digits), checked for length first
    # (``int`` refuses a string of more than 4,300 digits with ValueError)
    return value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)) and 0 < int(value) <= MAX_ID
