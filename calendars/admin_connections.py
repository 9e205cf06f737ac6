"""Admin for calendar connections: status, last sync and last error per connection; never the credentials.

Registered from ``CalendarsConfig.ready()`` (``calendars/admin.py`` belongs to the availability models).
"""

from __future__ import annotations

from django.contrib import admin, messages

from calendars.errors import CalendarError
from calendars.models import BookingEvent, Calendar, CalendarConnection
from calendars.services.connections import calendar_delete, calendars_refresh, connection_delete
from calendars.services.sync import request_sync

SECRET_FIELDS = ("secret_blob", "watch_secret_hash", "sync_state")


class CalendarInline(admin.TabularInline):
    model = Calendar
    extra = 0
    can_delete = False
    fields = (
        "name",
        "blocks_availability",
        "receives_bookings",
        "last_synced_at",
        "last_error",
        "watch_expiration",
    )
    # all shown, none edited: the roles are the rep's to choose on their calendar page
    # (``calendar_roles_set``: the busy rows of a calendar that stops blocking go, one receiving calendar,
    # never a read-only one), which a save here skipped
    readonly_fields = fields
    exclude = SECRET_FIELDS
    show_change_link = True


@admin.register(CalendarConnection)
class CalendarConnectionAdmin(admin.ModelAdmin):
    list_display = (
        "rep",
        "provider",
        "account_email",
        "status",
        "last_sync_at",
        "last_success_at",
        "last_error",
    )
    list_filter = ("provider", "status")
    search_fields = ("rep__name", "rep__email", "account_email")
    list_select_related = ("rep",)
    exclude = SECRET_FIELDS
    readonly_fields = (
        "rep",
        "provider",
        "account_email",
        "account_key",
        "status",
        "last_sync_at",
        "last_success_at",
        "last_error",
        "created_at",
    )
    inlines = [CalendarInline]
    actions = ["sync_now", "refresh_calendars"]

    def has_add_permission(self, request) -> bool:
        return False  # connections are made by reps through OAuth or their ICS link

    def delete_model(self, request, obj):
        """As Disconnect deletes it (``connection_delete``: its push channels stopped first), not by the
        cascade alone, which left Google pushing to Baton, unknown, for days."""
        connection_delete(connection=obj)

    def delete_queryset(self, request, queryset):
        for connection in queryset:
            connection_delete(connection=connection)

    @admin.action(description="Sync the selected connections now", permissions=["change"])
    def sync_now(self, request, queryset):
        count = 0
        for cal in Calendar.objects.filter(connection__in=queryset, blocks_availability=True):
            count += request_sync(calendar_id=cal.pk)
        self.message_user(request, f"Queued {count} calendar sync(s).")

    @admin.action(description="Refresh the calendar lists", permissions=["change"])
    def refresh_calendars(self, request, queryset):
        for connection in queryset:
            try:
                calendars_refresh(connection_id=connection.pk)
            except CalendarError as exc:
                self.message_user(request, f"{connection}: {exc.message}", level=messages.ERROR)


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "connection",
        "blocks_availability",
        "receives_bookings",
        "last_synced_at",
        "last_error",
    )
    list_filter = ("blocks_availability", "receives_bookings", "connection__provider")
    search_fields = ("name", "connection__rep__name", "connection__account_email")
    list_select_related = ("connection__rep",)
    exclude = SECRET_FIELDS
    readonly_fields = (
        "connection",
        "blocks_availability",  # the rep's to choose (``calendar_roles_set``), as on the inline
        "receives_bookings",
        "external_id",
        "is_primary",
        "can_write",
        "online_meeting_providers",
        "window_end",
        "last_synced_at",
        "last_attempt_at",
        "last_error",
        "retry_not_before",
        "sync_requested_at",
        "sync_lease_until",
        "watch_channel_id",
        "watch_resource_id",
        "watch_expiration",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        """Its push channel stopped first (``calendar_delete``), as the connection's delete does: the
        cascade alone left Google pushing to Baton, unknown, for days."""
        calendar_delete(calendar=obj)

    def delete_queryset(self, request, queryset):
        for calendar in queryset.select_related("connection"):
            calendar_delete(calendar=calendar)


@admin.register(BookingEvent)
class BookingEventAdmin(admin.ModelAdmin):
    list_display = ("booking", "rep", "provider", "state", "written_sequence", "updated_at")
    list_filter = ("provider", "state")
    readonly_fields = (
        "booking",
        "rep",
        "calendar",
        "provider",
        "account_email",
        "calendar_external_id",
        "external_event_id",
        "join_url",
        "state",
        "generation",
        "written_sequence",
        "host_removed_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        """Part of its booking (as the booking's admin says): without it a cancellation or a reassignment
        finds no event to cancel, and the meeting stays in the host's calendar for good."""
        return False
