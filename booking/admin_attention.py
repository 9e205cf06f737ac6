"""The booking list's "needs attention" filter: upcoming bookings whose host was deactivated or taken out of
the booking's pool, took time off, got other busy time, changed their hours or took the day off, or deleted
the meeting from their calendar after the booking was made (``booking.selectors.bookings_needing_attention``,
one filter choice per reason of ``ATTENTION``), so that an admin can reassign them before the prospect finds
nobody there."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from booking.selectors import ATTENTION, bookings_needing_attention

PARAMETER = "attention"
REP_PARAMETER = "attention_rep"  # one host's bookings that need attention (the rep admin's link)
MAX_ID = 2**63 - 1  # the largest id a database's key column holds


def _rep_id(value: object) -> int | None:
    """The rep id a (possibly hand-edited) link names, or None to ignore it: ASCII digits only (``isdigit``
    also takes "²", which ``int`` refuses) and within the key range (a longer number overflowed the query
    on SQLite, and ``int`` refuses one of over 4,300 digits): a mangled link shows the list, not a 500."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > len(str(MAX_ID)) or int(value) > MAX_ID:
        return None
    return int(value)


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = PARAMETER

    def __init__(self, request, params, model, model_admin):
        rep = params.pop(REP_PARAMETER, None)
        rep = rep[-1] if isinstance(rep, list) else rep
        self.rep_id = _rep_id(rep)
        super().__init__(request, params, model, model_admin)

    def expected_parameters(self):
        return [PARAMETER, REP_PARAMETER]

    def lookups(self, request, model_admin):
        return [("any", "Any reason"), *ATTENTION.items()]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in {"any", *ATTENTION}:
            return queryset
        reason = "" if value == "any" else value
        return bookings_needing_attention(queryset, reason, now=timezone.now(), rep_id=self.rep_id)
