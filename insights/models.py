"""Insights: the booking-page funnel as it happens (page views and routed leads), stored in UTC."""

from __future__ import annotations

from django.db import models


class PageVisit(models.Model):
    """One view of a prospect-facing booking page (from ``booking.signals.booking_page_viewed``)."""

    meeting_type = models.ForeignKey("booking.MeetingType", on_delete=models.CASCADE, related_name="+")
    pool = models.ForeignKey("routing.Pool", on_delete=models.CASCADE, related_name="+")
    visitor = models.CharField(max_length=64, blank=True, db_index=True, help_text="Anonymous cookie id")
    utm = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"visit {self.meeting_type_id} by {self.visitor or '?'} at {self.at:%Y-%m-%d %H:%M} UTC"


class RoutedLead(models.Model):
    """A prospect the routing rules qualified or disqualified (from ``booking.signals.lead_routed``)."""

    meeting_type = models.ForeignKey("booking.MeetingType", on_delete=models.CASCADE, related_name="+")
    pool = models.ForeignKey("routing.Pool", on_delete=models.CASCADE, related_name="+")
    qualified = models.BooleanField()
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{'qualified' if self.qualified else 'disqualified'} lead at {self.at:%Y-%m-%d %H:%M} UTC"
