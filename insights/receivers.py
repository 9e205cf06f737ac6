"""Signal receivers (connected in ``InsightsConfig.ready``): record the funnel."""

from __future__ import annotations

from django.utils import timezone

from insights.models import RoutedLead
from insights.services import page_visit_record


def on_page_viewed(sender, *, meeting_type, visitor="", utm=None, request=None, **kwargs):
    page_visit_record(meeting_type=meeting_type, visitor=visitor, utm=utm, at=timezone.now())


def on_lead_routed(sender, *, meeting_type, lead=None, disqualified=False, **kwargs):
    RoutedLead.objects.create(
        meeting_type=meeting_type, pool_id=meeting_type.pool_id, qualified=not disqualified, at=timezone.now()
    )
