"""Parts the apps' admins share: mixins for objects whose related rows are parts of them (their history
counted on the delete confirmation, not listed), the JSON box of the admin's JSON fields, and the warning
after a save that leaves a meeting type unable to offer any time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import messages
from django.contrib.admin.utils import NestedObjects, quote
from django.core.exceptions import ValidationError
from django.db import router
from django.forms.fields import InvalidJSONInput
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from routing.reach import never_offered
from routing.validators import escape_surrogates

# Rows whose own admin refuses deleting them one by one by design (an audit trail, a booking's parts): the
# permission to delete them is one nobody holds, so it is not asked when they go with their owner.
PARTS = (("routing", "LedgerEntry"), ("booking", "BookingHost"), ("calendars", "BookingEvent"))

# A rep's or booking's history: rows that pile up by the thousand (each named by its rep, pool or booking, a
# query apiece). The delete confirmation counts them under their owner ("Ledger entries: 2,300") instead of
# listing each one: the page of a departing rep ran a query per ledger entry before it showed.
HISTORY = frozenset(
    {
        "routing.LedgerEntry",
        "booking.BookingHost",
        "booking.OutboxMessage",
        "calendars.BookingEvent",
        "calendars.BusyInterval",
        "calendars.BusyHistory",
        "calendars.TimeOff",
        "calendars.DateOverride",
    }
)


def _history_count(opts, count: int) -> str:
    return f"{capfirst(opts.verbose_name_plural if count != 1 else opts.verbose_name)}: {count:,}"


def _with_history_counted(items: list, describe: Callable[..., Any], *, top: bool = True) -> list:
    """``NestedObjects.nested()``'s list (an object, then the list of what goes with it, if anything), each
    object described by ``describe``; below the top level (the objects deleted), the history rows with
    nothing going with them are counted per model, not listed (their delete permission is still asked)."""
    shown: list = []
    counted: dict[Any, int] = {}
    for index, item in enumerate(items):
        if isinstance(item, list):
            shown.append(_with_history_counted(item, describe, top=False))
        elif not top and item._meta.label in HISTORY and not isinstance(_after(items, index), list):
            describe(item, shown=False)
            counted[item._meta] = counted.get(item._meta, 0) + 1
        else:
            shown.append(describe(item))
    return shown + [_history_count(opts, count) for opts, count in counted.items()]


def _after(items: list, index: int) -> Any:
    return items[index + 1] if index + 1 < len(items) else None


def deleted_objects(objs, request, admin_site) -> tuple[list, dict, set, list, set[str]]:
    """Django's ``get_deleted_objects`` (what goes, how many of each, the permissions missing, the protected
    rows), with the history rows counted (``HISTORY``), and the verbose names of the protected rows' models
    (Django asks their delete permission too)."""
    try:
        first = objs[0]
    except IndexError:
        return [], {}, set(), [], set()
    collector = NestedObjects(using=router.db_for_write(first._meta.model), origin=objs)
    collector.collect(objs)
    perms_needed: set = set()

    def describe(obj, *, shown: bool = True):
        opts = obj._meta
        if not admin_site.is_registered(opts.model):
            return f"{capfirst(opts.verbose_name)}: {obj}" if shown else None
        if not admin_site.get_model_admin(opts.model).has_delete_permission(request, obj):
            perms_needed.add(opts.verbose_name)
        if not shown:
            return None
        try:
            name = f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change"
            url = reverse(name, args=[quote(obj.pk)])
        except NoReverseMatch:
            return f"{capfirst(opts.verbose_name)}: {obj}"
        return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)

    deleted = _with_history_counted(collector.nested(), describe)
    protected = [describe(obj) for obj in collector.protected]
    counts = {model._meta.verbose_name_plural: len(rows) for model, rows in collector.model_objs.items()}
    protected_models = {str(obj._meta.verbose_name) for obj in collector.protected}
    return deleted, counts, perms_needed, protected, protected_models


class CountedHistory:
    """``get_deleted_objects`` with a rep's or booking's history counted, not listed (``deleted_objects``)."""

    def get_deleted_objects(self, objs, request):
        return deleted_objects(objs, request, self.admin_site)[:4]


class DeletedWithIt:
    """``get_deleted_objects`` without the delete permission of ``PARTS`` (a rep's or pool's ledger
    entries) and of the protected rows (Django asks it of them too, and shows that instead of them): a
    superuser was told "your account doesn't have permission to delete … ledger entry" for a rep added to a
    pool by mistake (a 403 on the POST), or that instead of the protected bookings (listed now: cancel or
    reassign them first). Any other missing permission still refuses the deletion (leads of a meeting
    type, a rep's calendar connections). History rows are counted, not listed (``deleted_objects``)."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected, protected_models = deleted_objects(
            objs, request, self.admin_site
        )
        exempt = {str(apps.get_model(app, model)._meta.verbose_name) for app, model in PARTS}
        exempt |= protected_models
        return deleted, counts, {p for p in perms_needed if str(p) not in exempt}, protected


# Deeper than any rule tree needs, shallow enough for every recursive check of a value (and its redisplay)
JSON_BOX_DEPTH = 200


def _nesting(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (a number or text: 0), counted without recursion."""
    depth, level = 0, [value]
    while containers := [node for node in level if isinstance(node, list | dict)]:
        depth += 1
        level = [item for node in containers for item in (node.values() if isinstance(node, dict) else node)]
    return depth


class JSONBox(forms.JSONField):
    """Django's JSON form field without its 500s, every JSON box of the admin (the forms'
    ``field_classes``). Text it cannot read is "Enter a valid JSON." and shown again as typed, also a number
    of more than 4,300 digits (Python refuses it with a plain ValueError, not the JSONDecodeError Django
    catches) and nesting deeper than the reader goes (RecursionError); a value nested more than
    ``JSON_BOX_DEPTH`` deep is refused before the models' recursive checks (``rules_core.validate``) run out
    of stack on it. Half a surrogate pair (which those checks refuse) is shown escaped, as JSON writes it:
    as it is, it has no UTF-8, and the page was a 500."""

    def to_python(self, value):
        try:
            value = super().to_python(value)
        except (ValueError, RecursionError):
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None
        if _nesting(value) > JSON_BOX_DEPTH:
            raise ValidationError(f"Nested more than {JSON_BOX_DEPTH} levels deep.", code="nested")
        return value

    def bound_data(self, data, initial):
        try:
            value = super().bound_data(data, initial)
        except (ValueError, RecursionError):
            return InvalidJSONInput(data)
        return InvalidJSONInput(data) if _nesting(value) > JSON_BOX_DEPTH else value

    def prepare_value(self, value):
        return escape_surrogates(super().prepare_value(value))


def warn_never_offered(request, meeting_types) -> None:
    """After a save (a meeting type's grid, a pool's members, a member's or rep's active flag or zone): a
    warning for each active meeting type of ``meeting_types`` whose pool can never offer it a time
    (``routing.reach``). The save stands: an admin may be half-way through staffing."""
    for meeting_type, reasons in never_offered(meeting_types):
        messages.warning(
            request,
            format_html(
                "Meeting type “{}” ({}) can never offer a time: {}. Its "
                '<a href="{}">booking page</a> says that no times can be booked.',
                meeting_type.title,
                meeting_type.slug,
                "; ".join(reasons),
                reverse("booking-page", args=[meeting_type.slug]),
            ),
        )
