"""Deletions in the admin that a service may refuse (``booking.services.delete.bookings_delete``,
``leads.services.leads_delete``): the refusal (a ``BookingError``) is shown as a message and nothing is
deleted, on the object's delete page and in the "Delete selected" action."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect

from booking.errors import BookingError


class RefusedDeletionMixin:
    """For a ``ModelAdmin`` whose ``delete_model``/``delete_queryset`` call a service that may refuse."""

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except BookingError as exc:  # nothing was deleted (the admin's transaction rolled back)
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def response_action(self, request, queryset):
        if request.POST.get("action") != "delete_selected":
            return super().response_action(request, queryset)
        try:  # Django logs the deletions before it deletes: in one transaction, both or neither
            with transaction.atomic():
                return super().response_action(request, queryset)
        except BookingError as exc:  # nothing was deleted
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
