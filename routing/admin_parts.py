"""Parts the apps' admins share: a mixin for objects whose related rows are parts of them, and the JSON box
of the admin's JSON fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import ValidationError
from django.db import router
from django.forms.fields import InvalidJSONInput

from routing.validators import escape_surrogates

# Rows whose own admin refuses deleting them one by one by design (an audit trail, a booking's parts): the
# permission to delete them is one nobody holds, so it is not asked when they go with their owner.
PARTS = (("routing", "LedgerEntry"), ("booking", "BookingHost"), ("calendars", "BookingEvent"))


class DeletedWithIt:
    """``get_deleted_objects`` without the delete permission of ``PARTS`` (a rep's or pool's ledger
    entries) and of the protected rows (Django asks it of them too, and shows that instead of them): a
    superuser was told "your account doesn't have permission to delete … ledger entry" for a rep added to a
    pool by mistake (a 403 on the POST), or that instead of the protected bookings (listed now: cancel or
    reassign them first). Any other missing permission still refuses the deletion (leads of a meeting
    type, a rep's calendar connections)."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        exempt = {str(apps.get_model(app, model)._meta.verbose_name) for app, model in PARTS}
        if protected:
            collector = NestedObjects(using=router.db_for_write(self.model))
            collector.collect(objs)
            exempt |= {str(obj._meta.verbose_name) for obj in collector.protected}
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
