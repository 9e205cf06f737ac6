"""Admin for the availability models: working hours, date overrides, time off and busy intervals.

The inlines are shown on the rep's page (``routing.admin``). Calendar connections have their own module,
``calendars.admin_connections``, registered from ``CalendarsConfig.ready()``.
"""

from __future__ import annotations

from django.contrib import admin

from calendars.forms import DateOverrideForm, DateOverrideFormSet, WorkingHoursForm, WorkingHoursFormSet
from calendars.models import BusyHistory, BusyInterval, DateOverride, TimeOff, WorkingHours
from config.admin_guards import SafeChangeListMixin


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    formset = WorkingHoursFormSet
    extra = 0
    fields = ("weekday", "start", "end")


class DateOverrideInline(admin.TabularInline):
    model = DateOverride
    formset = DateOverrideFormSet
    extra = 0
    fields = ("date", "start", "end")
    verbose_name_plural = "date overrides (leave start and end empty for a day off)"


class TimeOffInline(admin.TabularInline):
    model = TimeOff
    extra = 0
    fields = ("start", "end", "reason")

    def get_queryset(self, request):
        # each row is labelled ``str(TimeOff)``, the rep's name: joined, not a query per entry
        return super().get_queryset(request).select_related("rep")


class _RepOwned(SafeChangeListMixin, admin.ModelAdmin):
    list_select_related = ("rep",)
    search_fields = ("rep__name", "rep__email")
    autocomplete_fields = ("rep",)


@admin.register(WorkingHours)
class WorkingHoursAdmin(_RepOwned):
    form = WorkingHoursForm
    list_display = ("rep", "weekday", "start", "end")
    list_filter = ("weekday", "rep__timezone")


@admin.register(DateOverride)
class DateOverrideAdmin(_RepOwned):
    form = DateOverrideForm
    list_display = ("rep", "date", "start", "end")
    list_filter = ("date",)
    date_hierarchy = "date"


@admin.register(TimeOff)
class TimeOffAdmin(_RepOwned):
    list_display = ("rep", "start", "end", "reason")
    list_filter = ("start",)
    search_fields = ("rep__name", "rep__email", "reason")


@admin.register(BusyInterval)
class BusyIntervalAdmin(_RepOwned):
    """Synced rows are rewritten by the next sync; add ``manual`` rows to block time by hand."""

    list_display = ("rep", "start", "end", "source", "synced_at", "external_id")
    list_filter = ("source", "start")
    search_fields = ("rep__name", "rep__email", "external_id")
    date_hierarchy = "start"


@admin.register(BusyHistory)
class BusyHistoryAdmin(_RepOwned):
    """Read-only: busy times a sync removed, kept for the routing simulator's replays (BUSY_HISTORY_DAYS)."""

    list_display = ("rep", "start", "end", "source", "synced_at", "removed_at")
    list_filter = ("source", "removed_at")
    date_hierarchy = "removed_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
