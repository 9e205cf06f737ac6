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


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = PARAMETER

    def __init__(self, request, params, model, model_admin):
        rep = params.pop(REP_PARAMETER, None)
        rep = rep[-1] if isinstance(rep, list) else rep
        self.rep_id = int(rep) if isinstance(rep, str) and rep.isdigit() else None
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
