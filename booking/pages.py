"""Server-rendered pages for people (landing page; booking pages come with the booking UI)."""

from django.shortcuts import render

from booking.models import MeetingType


def landing(request):
    meeting_types = MeetingType.objects.filter(active=True).select_related("pool").order_by("title")
    return render(request, "landing.html", {"meeting_types": meeting_types})
