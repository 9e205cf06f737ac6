"""The booking list's "needs attention" filter: upcoming bookings whose host was deactivated, took time off,
got other busy time, changed their hours or took the day off, or deleted the meeting from their calendar
after the booking was made
(``booking.selectors.bookings_needing_attention``), so that an admin can reassign them before the prospect
finds nobody there."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from booking.selectors import ATTENTION, bookings_needing_attention

PARAMETER = "attention"


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = PARAMETER

    def lookups(self, request, model_admin):
        return [("any", "Any reason"), *ATTENTION.items()]

    def queryset(self, request, queryset):
        value = self.value()
        if value not in {"any", *ATTENTION}:
            return queryset
        return bookings_needing_attention(queryset, "" if value == "any" else value, now=timezone.now())
