"""The JSON shape of a booking in API responses (also stored for idempotent replays)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings

from booking.models import Booking


def manage_url(token: str) -> str:
    return f"{settings.BASE_URL}/manage/{token}"


def booking_body(
    booking: Booking, hosts: list[dict], *, zone: str | None = None, token: str | None = None, now=None
) -> dict:
    """``hosts``: dicts with name, email, role (active hosts, lead first). Times in ``zone`` (default: the
    prospect's zone). ``token`` adds ``manage_url`` and ``manage_token`` (creation only)."""
    tz = ZoneInfo(zone or booking.prospect_timezone)
    meeting = booking.meeting_type
    body = {
        "id": booking.pk,
        "status": booking.status,
        "start": booking.start.astimezone(tz).isoformat(),
        "end": booking.end.astimezone(tz).isoformat(),
        "timezone": tz.key,
        "meeting_type": {"slug": meeting.slug, "title": meeting.title, "duration": meeting.duration_minutes},
        "location": {"kind": meeting.location_kind, "detail": meeting.location_detail},
        "hosts": [{"name": h["name"], "email": h["email"], "role": h["role"]} for h in hosts],
        "sequence": booking.sequence,
    }
    if booking.status == Booking.Status.CANCELLED:
        body["cancel_reason"] = booking.cancel_reason
    if now is not None:
        upcoming = booking.status == Booking.Status.CONFIRMED and booking.start > now
        body["can_cancel"] = body["can_reschedule"] = upcoming
    if token is not None:
        body["manage_url"] = manage_url(token)
        body["manage_token"] = token
    return body
