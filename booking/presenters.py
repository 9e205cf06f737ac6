"""The JSON shape of a booking in API responses (also stored for idempotent replays), and the context of
the prospect-facing pages (booking/pages.py)."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils import timezone

from booking import ics
from booking.models import Booking, MeetingType
from config.links import absolute_url
from routing.reach import why_never_offered
from routing.validators import known_timezones, within_years


def answer_text(value) -> str:
    """An answer as people read it: ``["sso", "scim"]`` → ``sso, scim``, ``True`` → ``yes``, ``120.0`` →
    ``120``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(answer_text(v) for v in value)
    return str(value)


def answer_rows(questions: list, answers: dict) -> list[tuple[str, str]]:
    """(label, answer) pairs for a booking's answers, in the order of the meeting type's questions (their
    labels; a key for an answer whose question is gone, after the others)."""
    labels = {
        q["key"]: str(q.get("label") or q["key"])
        for q in questions or []
        if isinstance(q, dict) and "key" in q
    }
    order = {key: i for i, key in enumerate(labels)}
    keys = sorted(answers or {}, key=lambda k: (order.get(k, len(order)), str(k)))
    return [(labels.get(k, str(k)), answer_text(answers[k])) for k in keys]


def manage_url(token: str) -> str:
    return absolute_url("booking-manage", args=[token])


def _minutes(booking: Booking) -> int:
    return int((booking.end - booking.start).total_seconds() // 60)


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
        # the booking's own length: the meeting type's may have changed since (its start and end stay)
        "meeting_type": {"slug": meeting.slug, "title": meeting.title, "duration": _minutes(booking)},
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


# --- prospect-facing pages (booking/pages.py)

CALENDAR_STAMP = "%Y%m%dT%H%M%SZ"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def calendar_links(*, title: str, start: datetime, end: datetime, location: str, details: str) -> dict:
    """ "Add to calendar" web links: Google Calendar and Outlook (outlook.live.com) compose pages."""
    google = urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{_utc(start):{CALENDAR_STAMP}}/{_utc(end):{CALENDAR_STAMP}}",
            "details": details,
            "location": location,
        }
    )
    outlook = urlencode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": title,
            "startdt": _utc(start).isoformat().replace("+00:00", "Z"),
            "enddt": _utc(end).isoformat().replace("+00:00", "Z"),
            "body": details,
            "location": location,
        }
    )
    return {
        "google": f"https://calendar.google.com/calendar/render?{google}",
        "outlook": f"https://outlook.live.com/calendar/0/deeplink/compose?{outlook}",
    }


def clock(local: datetime) -> str:
    """``10:00``; with its UTC offset (``02:00 UTC+01:00``) when that wall time happens twice, the night the
    clocks go back (either 02:00 read the same)."""
    text = f"{local:%H:%M}"
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        text += f" {utc_offset(local)}"
    return text


def utc_offset(local: datetime) -> str:
    """``UTC+01:00``: the UTC offset of an aware time."""
    offset = local.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def zone_label(zone: ZoneInfo, moment: datetime) -> str:
    """The zone's name, with its UTC offset at ``moment`` where the name carries a number: POSIX-style names
    count the other way (``Etc/GMT-14`` is UTC+14, ``EST5EDT`` UTC−5), wrong by hours or a day read as an
    offset, so ``Etc/GMT-14, UTC+14:00``. Other names stay as they are (``Europe/Berlin``)."""
    if not any(c.isdigit() for c in zone.key):
        return zone.key
    return f"{zone.key}, {utc_offset(moment.astimezone(zone))}"


def when_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``Tuesday 3 March 2026, 10:00–10:30`` in ``zone`` (``clock``: an ambiguous time with its offset)."""
    a, b = start.astimezone(zone), end.astimezone(zone)
    return f"{a:%A} {a.day} {a:%B %Y}, {clock(a)}–{clock(b)}"


def location_label(meeting: MeetingType) -> str:
    """The kind of place ("Video call", "Phone call", …): what the booking page shows before a booking."""
    return MeetingType.LocationKind(meeting.location_kind).label if meeting.location_kind else ""


def location_text(meeting: MeetingType) -> str:
    """The kind and the detail (the video link, number or address): for those who booked (confirmation,
    manage page, invitations), not for every visitor of the booking page."""
    label = location_label(meeting)
    return f"{label}: {meeting.location_detail}" if meeting.location_detail else label


# a time, then a space where the offset's sign should be: ``10:00:00 01:00`` is ``10:00:00+01:00`` as it was
# written into a link without percent-encoding (a query string reads ``+`` as a space)
SPACED_OFFSET = re.compile(r"(.+\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?) (\d{2}(?::?\d{2})?)")


def _plus_offset(value: str) -> str:
    """``value`` with a space before its UTC offset read back as the ``+`` it was (no valid value has one)."""
    match = SPACED_OFFSET.fullmatch(value)
    return f"{match[1]}+{match[2]}" if match else value


def _clean_prefill(query) -> dict:
    def text(key: str, limit: int) -> str:
        value = (query.get(key) or "").strip()
        return value[:limit]

    prefill = {"name": text("name", 200), "email": text("email", 254), "date": "", "start": ""}
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(text("date", 10))
        if within_years(day):  # what the slots API accepts
            prefill["date"] = day.isoformat()
    try:
        start = datetime.fromisoformat(_plus_offset(text("start", 40)))
        if start.utcoffset() is not None and within_years(start):
            prefill["start"] = start.isoformat()
    except ValueError:
        pass
    zone = text("timezone", 64)
    prefill["timezone"] = zone if zone in known_timezones() else ""
    return prefill


TOKEN_SLOT = "__token__"


def no_times_ever(meeting: MeetingType) -> bool:
    """Whether the booking page can offer no time at all: neither the meeting type's pool nor any pool its
    active routing rules send prospects to (a rule's pool or fallback pool) can ever offer it one — a
    group role without an active member, roles whose zones never share a start on the slot grid
    (``routing.reach``). A route only narrows its pool, so it cannot offer what the pool cannot."""
    rules = meeting.routing_rules.filter(active=True)
    rules = rules.exclude(outcome=rules.model.Outcome.DISQUALIFY)
    pools = {meeting.pool_id: meeting.pool}
    for rule in rules.select_related("pool", "fallback_pool"):
        pools.update((pool.pk, pool) for pool in (rule.pool, rule.fallback_pool) if pool is not None)
    now = timezone.now()
    return all(why_never_offered(pool, meeting, now=now) for pool in pools.values())


def booking_page_context(meeting: MeetingType, query, *, utm: dict) -> dict:
    """Template context of ``/book/<slug>``; ``config`` is handed to book.js as JSON."""
    slug = meeting.slug
    config = {
        "page": "book",
        "slug": slug,
        "title": meeting.title,
        "duration": meeting.duration_minutes,
        "questions": [q for q in meeting.questions or [] if isinstance(q, dict) and q.get("key")],
        "prefill": _clean_prefill(query),
        "utm": utm,
        # reverse(), not literal paths: under a sub-path (SCRIPT_NAME) they carry its prefix
        "api": {
            "slots": reverse("api-slots", args=[slug]),
            "bookings": reverse("api-bookings-create", args=[slug]),
            "route": reverse("api-lead-route", args=[slug]),
        },
        # the confirmation fragment book-page.js loads once booked, TOKEN_SLOT replaced by the manage token
        "confirmation": reverse("booking-manage-confirmation", args=[TOKEN_SLOT]),
        # the kind only: the detail (a standing video room's link and passcode) is for those who booked, as
        # in the public API (``location_kind`` only)
        "location": location_label(meeting),
        # routing rules: the page asks who the prospect is and routes before offering times
        "routing": meeting.routing_rules.exists(),
        # starts are offered before this instant (the horizon): an instant, not a date, so the picker finds
        # the last month with times in whatever zone the prospect picks
        "bookable_until": (timezone.now() + timedelta(days=meeting.horizon_days)).astimezone(UTC).isoformat(),
        # no time can be offered at all (``no_times_ever``): the picker says so, not "Try the next month"
        "no_times": no_times_ever(meeting),
    }
    return {
        "meeting_type": meeting,
        "location": location_label(meeting),
        "config": config,
        "zones": sorted(known_timezones()),
        "embed": query.get("embed") == "1",
    }


def manage_page_context(booking: Booking, *, token: str, now: datetime) -> dict:
    from booking.api.views import _active_hosts  # the API's definition of "the hosts" of a booking

    meeting = booking.meeting_type
    zone = ZoneInfo(booking.prospect_timezone)
    body = booking_body(booking, _active_hosts(booking), now=now)
    location = location_text(meeting)
    details = f"Manage or cancel: {manage_url(token)}"
    config = {
        "page": "manage",
        "slug": meeting.slug,
        "title": meeting.title,
        "duration": meeting.duration_minutes,
        "questions": [],
        "prefill": {"timezone": zone.key, "date": booking.start.astimezone(zone).date().isoformat()},
        "utm": {},
        "api": {
            "slots": reverse("api-booking-slots", args=[token]),  # where this booking can move to
            "cancel": reverse("api-booking-cancel", args=[token]),
            "reschedule": reverse("api-booking-reschedule", args=[token]),
        },
        "bookable_until": (now + timedelta(days=meeting.horizon_days)).astimezone(UTC).isoformat(),
    }
    return {
        "booking": body,
        "status_label": booking.get_status_display(),  # "No-show", not the stored "no_show"
        "meeting_type": meeting,
        "when": when_label(booking.start, booking.end, zone),
        "zone": zone_label(zone, booking.start),
        "location": location,
        "location_url": meeting.location_detail if meeting.location_detail.startswith("https://") else "",
        "links": calendar_links(
            title=meeting.title, start=booking.start, end=booking.end, location=location, details=details
        ),
        "ics_url": reverse("booking-manage-ics", args=[token]),
        "manage_url": manage_url(token),
        "manage_path": reverse("booking-manage", args=[token]),
        "config": config,
        "zones": sorted(known_timezones()),
        "embed": False,
    }


def booking_ics(booking: Booking, *, token: str) -> bytes:
    """The booking as a PUBLISH calendar file (the prospect's "add to calendar" download), without
    attendees (RFC 5546 §3.2.1: a published event has no one to answer it); a CANCEL once cancelled, which
    names them (§3.2.5)."""
    from booking.api.views import _active_hosts

    hosts = _active_hosts(booking)
    lead = hosts[0] if hosts else {"name": "Baton", "email": "baton@localhost"}
    meeting = booking.meeting_type
    cancelled = booking.status == Booking.Status.CANCELLED
    attendees = [(h["name"], h["email"]) for h in hosts[1:]]
    attendees.append((booking.prospect_name, booking.prospect_email))
    return ics.invitation(
        method=ics.CANCEL if cancelled else ics.PUBLISH,
        uid=booking.ical_uid,
        sequence=booking.sequence,
        start=booking.start,
        end=booking.end,
        summary=meeting.title,
        description=f"Manage or cancel: {manage_url(token)}",
        location=location_text(meeting),
        organizer=(lead["name"], lead["email"]),
        attendees=attendees if cancelled else [],
    )
