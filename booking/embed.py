"""Embedding Baton elsewhere: the email-snippet endpoint, the embed-code helpers the admin shows, and a demo
host page. The widget itself is ``static/baton/embed.js`` (host side) and ``static/baton/embed-frame.js``
(inside the booking page); framing is decided by ``booking.middleware`` (see docs/embed.md)."""

from __future__ import annotations

from urllib.parse import urlencode, urljoin
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe
from rest_framework.exceptions import Throttled

from booking import selectors
from booking.api.throttles import ReadRateThrottle
from booking.errors import InvalidInput, MeetingTypeNotFound
from booking.models import MeetingType
from booking.snippet import (
    EmailSnippetQuerySerializer,
    booking_page_url,
    render_snippet_html,
    render_snippet_text,
    snippet_context,
    utm_params,
)

SNIPPET_EXAMPLE = {"days": "3", "count": "6", "timezone": "UTC", "email": "EMAIL"}


def script_url() -> str:
    """The widget script's absolute URL: ``static()``'s path on ``BASE_URL``'s origin. Not appended to
    ``BASE_URL``: under a sub-path both name it (a relative ``STATIC_URL`` is prefixed with SCRIPT_NAME)."""
    return urljoin(settings.BASE_URL, static("baton/embed.js"))


def embed_codes(meeting_type: MeetingType) -> dict[str, str]:
    """The copy-paste codes for ``meeting_type``: inline widget, pop-up button, link, email-snippet URL."""
    slug = meeting_type.slug
    script = f'<script src="{script_url()}" async></script>'
    snippet_query = urlencode(SNIPPET_EXAMPLE)
    return {
        "inline": f'<div data-baton-meeting="{slug}"></div>\n{script}',
        "popup": f'<button type="button" data-baton-popup="{slug}">Book a meeting</button>\n{script}',
        "link": booking_page_url(slug),
        "email_snippet": f"{booking_page_url(slug)}/email-snippet?{snippet_query}",
    }


ADMIN_LABELS = {
    "inline": "Inline widget",
    "popup": "Pop-up button",
    "link": "Booking link",
    "email_snippet": "Email snippet URL",
}


def admin_embed_box(meeting_type: MeetingType) -> str:
    """HTML of the admin's "copy embed code" box (``static/baton/admin-copy.js`` does the copying)."""
    codes = embed_codes(meeting_type)
    rows = [(key, label, codes[key], codes[key].count("\n") + 1) for key, label in ADMIN_LABELS.items()]
    demo_url = reverse("booking-embed-demo", args=[meeting_type.slug]) if meeting_type.active else ""
    return render_to_string("admin/booking/meetingtype/embed_code.html", {"rows": rows, "demo_url": demo_url})


def _error(exc) -> JsonResponse:
    return JsonResponse(exc.as_dict(), status=exc.status, headers={"Cache-Control": "no-store"})


@require_safe
def email_snippet(request, slug: str) -> HttpResponse:
    """``GET /book/<slug>/email-snippet?days=&count=&timezone=&email=&name=&utm_*=&format=html|text``. It
    computes the pool's slots as the slots API does: the same per-address read limit applies."""
    throttle = ReadRateThrottle()
    if not throttle.allow_request(request, None):  # answered as the API answers it
        limited = Throttled(wait=throttle.wait())
        wait = max(1, int(limited.wait or 0))  # never "0": an invitation to retry at once
        return JsonResponse(
            {"code": "rate_limited", "detail": str(limited.detail), "retry_after": wait},
            status=429,
            headers={"Retry-After": str(wait), "Cache-Control": "no-store"},
        )
    try:
        meeting_type = selectors.meeting_type_get(slug)
    except MeetingTypeNotFound as exc:
        return _error(exc)
    query = EmailSnippetQuerySerializer(data=request.GET)
    utm, utm_errors = utm_params(request.GET)
    valid = query.is_valid()
    if not valid or utm_errors:
        return _error(InvalidInput({**(query.errors if not valid else {}), **utm_errors}))
    data = query.validated_data
    context = snippet_context(
        meeting_type,
        days=data["days"],
        count=data["count"],
        zone=ZoneInfo(data["timezone"]),
        now=timezone.now(),
        email=data["email"],
        name=data["name"],
        utm=utm,
    )
    if data["format"] == "text":
        body, content_type = render_snippet_text(context), "text/plain; charset=utf-8"
    else:
        body, content_type = render_snippet_html(context), "text/html; charset=utf-8"
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@require_safe
def embed_demo(request, slug: str) -> HttpResponse:
    """A host page embedding the widget inline and as a pop-up (DEBUG, or staff only)."""
    if not (settings.DEBUG or (request.user.is_authenticated and request.user.is_staff)):
        raise Http404
    try:
        meeting_type = selectors.meeting_type_get(slug)
    except MeetingTypeNotFound:
        raise Http404 from None
    context = {"meeting_type": meeting_type, "codes": embed_codes(meeting_type)}
    return render(request, "embed_demo.html", context)
