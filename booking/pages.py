"""Server-rendered pages for people: the landing page, the booking page ``/book/<slug>`` and the manage
pages ``/manage/<token>`` (plus its ``.ics`` download). The pages are thin: data comes from the selectors
and ``booking.presenters``; booking, cancelling and rescheduling go through the JSON API from
``static/baton/book.js`` (see docs/booking-page.md)."""

from __future__ import annotations

import re
import secrets

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

from booking import presenters, selectors
from booking.errors import BookingNotFound, MeetingTypeNotFound
from booking.models import MeetingType
from booking.signals import booking_page_viewed
from booking.snippet import utm_params

VISITOR_COOKIE = "baton_visitor"
VISITOR_MAX_AGE = 365 * 24 * 3600
# What the booking API's ``visitor`` field accepts (ASCII only: ``str.isalnum`` let "é" through, and every
# booking from that browser was refused with a 400 on a field the prospect cannot see).
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


@require_safe
def landing(request):
    meeting_types = MeetingType.objects.filter(active=True).select_related("pool").order_by("title")
    return render(request, "landing.html", {"meeting_types": meeting_types})


def _not_found(request, what: str) -> HttpResponse:
    embed = request.GET.get("embed") == "1"
    return render(request, "booking/not_found.html", {"what": what, "embed": embed}, status=404)


def _visitor_id(request) -> tuple[str, bool]:
    """The first-party visitor id from the cookie, or a new one (``True``: set the cookie)."""
    current = request.COOKIES.get(VISITOR_COOKIE, "")
    if VISITOR_ID.fullmatch(current):
        return current, False
    return secrets.token_hex(16), True


@require_safe
def book(request, slug: str) -> HttpResponse:
    """``GET /book/<slug>`` with optional ``name``, ``email``, ``date``, ``start``, ``timezone``, ``utm_*``
    and ``embed=1``. Sends ``booking_page_viewed`` once per view."""
    try:
        meeting_type = selectors.meeting_type_get(slug)
    except MeetingTypeNotFound:
        return _not_found(request, "meeting type")
    utm, _errors = utm_params(request.GET)  # malformed utm_* keys are dropped, not fatal to a prospect
    visitor, new_visitor = _visitor_id(request)
    context = presenters.booking_page_context(meeting_type, request.GET, utm=utm)
    context["config"]["visitor"] = visitor  # the cookie is httponly: book.js sends it with the booking
    response = render(request, "booking/book.html", context)
    if new_visitor:
        # In an iframe on another site only a SameSite=None (hence Secure) cookie is kept.
        cross_site = request.is_secure() and request.GET.get("embed") == "1"
        response.set_cookie(
            VISITOR_COOKIE, visitor, max_age=VISITOR_MAX_AGE, httponly=True,
            samesite="None" if cross_site else "Lax", secure=request.is_secure(),
        )  # fmt: skip
    # The HTML carries the visitor id from the cookie: a shared cache (a proxy, a CDN) must not hand one
    # visitor's page, and so their id, to the next prospect.
    patch_vary_headers(response, ("Cookie",))
    patch_cache_control(response, private=True)
    if request.method == "GET":
        booking_page_viewed.send(
            sender=MeetingType, meeting_type=meeting_type, visitor=visitor, utm=utm, request=request
        )
    return response


@require_safe
def manage(request, token: str) -> HttpResponse:
    """``GET /manage/<token>``: the booking, with cancel and reschedule (through the API). Not stored by the
    browser: Back after a cancellation showed the cached page, "Confirmed", with its buttons."""
    try:
        booking = selectors.booking_by_token(token)
    except BookingNotFound:
        return _not_found(request, "booking")
    context = presenters.manage_page_context(booking, token=token, now=timezone.now())
    response = render(request, "booking/manage.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def manage_confirmation(request, token: str) -> HttpResponse:
    """``GET /manage/<token>/confirmation``: the confirmation as an HTML fragment, fetched by the booking
    page after a booking (so its text and calendar links come from the same presenters as the manage page)."""
    try:
        booking = selectors.booking_by_token(token)
    except BookingNotFound:
        return _not_found(request, "booking")
    context = presenters.manage_page_context(booking, token=token, now=timezone.now())
    response = render(request, "booking/confirmation.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def manage_ics(request, token: str) -> HttpResponse:
    """``GET /manage/<token>/ics``: the booking as an .ics file for "add to calendar"."""
    try:
        booking = selectors.booking_by_token(token)
    except BookingNotFound:
        return _not_found(request, "booking")
    response = HttpResponse(presenters.booking_ics(booking, token=token), content_type="text/calendar")
    response["Content-Disposition"] = f'attachment; filename="booking-{booking.pk}.ics"'
    response["Cache-Control"] = "no-store"
    return response
