"""Admin for outbox messages (registered by importing this module from ``booking.admin``): read-only, the
sealed secrets (manage link) never shown. Delivered and dead messages may be deleted (the daily purge does
it anyway); a pending one may not: it is an e-mail or calendar write not sent yet, and deleting it would
drop it silently and lift the guard that keeps its booking from being deleted (``booking_changes_pending``).
The "Retry" action gives dead messages a new round of attempts (``booking.outbox.dead_retry``)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from booking import outbox
from booking.models import OutboxMessage
from config.admin_guards import SafeChangeListMixin

PENDING = OutboxMessage.Status.PENDING


@admin.register(OutboxMessage)
class OutboxMessageAdmin(SafeChangeListMixin, admin.ModelAdmin):
    list_display = ("created_at", "event", "handler", "booking", "status", "attempts", "next_attempt_at")
    list_filter = ("status", "event", "handler")
    search_fields = ("handler", "event", "last_error", "booking__prospect_email")
    list_select_related = ("booking__meeting_type",)
    date_hierarchy = "created_at"
    actions = ("retry",)
    fields = (
        "event",
        "handler",
        "booking",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "payload_display",
        "last_error",
        "result",
        "created_at",
        "delivered_at",
    )
    readonly_fields = ("payload_display",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == PENDING:
            return False  # not delivered yet
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        """The pending messages among those selected are listed as what stops the deletion (rather than as a
        permission the user lacks, which is what Django makes of ``has_delete_permission``)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        pending = [f"{obj} — not delivered yet" for obj in objs if obj.status == PENDING]
        if pending and super().has_delete_permission(request):
            perms_needed = set()  # nothing is deleted with a message: its own permission was the one asked
        return deleted, counts, perms_needed, [*protected, *pending]

    def delete_model(self, request, obj):
        # only if still finished: a dead row put back to pending meanwhile ("Retry") stays
        OutboxMessage.objects.filter(pk=obj.pk).exclude(status=PENDING).delete()

    def delete_queryset(self, request, queryset):
        queryset.exclude(status=PENDING).delete()

    def has_retry_permission(self, request) -> bool:
        return super().has_change_permission(request)  # the model's change permission (rows are read-only)

    @admin.action(description="Retry (dead messages: a new round of attempts)", permissions=["retry"])
    def retry(self, request, queryset):
        ids = list(queryset.filter(status=OutboxMessage.Status.DEAD).values_list("pk", flat=True))
        count = outbox.dead_retry(message_ids=ids, now=timezone.now(), by=request.user.get_username())
        if count:
            self.message_user(
                request, f"{count} dead message(s) put back: the sweep sends them within a minute"
            )
        others = queryset.count() - count
        if others:
            self.message_user(request, f"{others} selected message(s) not dead, left alone", messages.WARNING)

    @admin.display(description="payload")
    def payload_display(self, obj: OutboxMessage) -> str:
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in sorted((obj.payload or {}).items()))
        )
        return format_html("<table>{}</table>", rows) if obj.payload else "—"
