"""Email-embedded slots: the next offered starts of a meeting type as a self-contained HTML fragment.

The fragment (``templates/booking/email_snippet.html``) uses inline styles and tables only, no script and no
images, so it survives email clients. Every start links to the booking page with that start preselected and
the prospect's email (and campaign ``utm_*``) prefilled. Slots come from ``booking.selectors`` — the same
computation the slots API uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from rest_framework import serializers

from booking import selectors
from booking.api.fields import QueryIntegerField, QueryTimezoneField
from booking.models import MeetingType

# \Z, not $: ``$`` also matches before a final line break, and ``utm_source%0A`` was a key of its own
UTM_KEY = re.compile(r"^utm_[a-z0-9_]{1,40}\Z")
MAX_UTM = 10  # the booking and route APIs take at most 20 keys


class EmailSnippetQuerySerializer(serializers.Serializer):
    """The query of the e-mail snippet. Only a parameter left out takes its default: one given empty (a
    mail-merge field left blank, ``?timezone=``) is a 400, not UTC times shown as the reader's own."""

    days = QueryIntegerField(min_value=1, max_value=14, default=3)
    count = QueryIntegerField(min_value=1, max_value=20, default=6)
    timezone = QueryTimezoneField(default="UTC")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    format = serializers.ChoiceField(choices=["html", "text"], default="html")


def utm_params(query) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The ``utm_*`` parameters of ``query`` (a QueryDict), and field errors for malformed ones. At most the
    first ``MAX_UTM`` well-formed ones are kept (more is an error too): the booking page, which drops the
    errors, must not hand book.js more than the booking API accepts, or every booking from it fails."""
    utm: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key in query:
        if not key.lower().startswith("utm_"):
            continue
        value = query.get(key, "")
        if not UTM_KEY.match(key):
            errors[key[:64]] = ["Expected utm_ followed by lower-case letters, digits or _."]
        elif len(value) > 200:
            errors[key] = ["At most 200 characters."]
        elif "\x00" in value:  # PostgreSQL's jsonb refuses \u0000: a 500 on the booking page before
            errors[key] = ["Null characters are not allowed."]
        else:
            utm[key] = value
    if len(utm) > MAX_UTM:
        errors["utm"] = [f"At most {MAX_UTM} utm_* parameters."]
        utm = dict(list(utm.items())[:MAX_UTM])
    return utm, errors


def booking_page_url(slug: str, **params: str) -> str:
    """Absolute URL (``settings.BASE_URL``) of the booking page of ``slug`` with the non-empty ``params``."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{settings.BASE_URL}/book/{quote(slug)}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class SnippetDay:
    label: str
    starts: list[tuple[str, str]]  # (time label, URL)


def day_label(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b}"


def time_label(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def snippet_context(
    meeting_type: MeetingType,
    *,
    days: int,
    count: int,
    zone: ZoneInfo,
    now: datetime,
    email: str = "",
    name: str = "",
    utm: dict[str, str] | None = None,
) -> dict:
    """Everything the fragment shows: the first ``count`` starts on the next ``days`` local dates."""
    first = now.astimezone(zone).date()
    last = first + timedelta(days=days - 1)
    starts = selectors.slots_for_days(meeting_type, start=first, end=last, zone=zone, now=now)[:count]
    carried = {"email": email, "name": name, "timezone": zone.key, **(utm or {})}
    # one abbreviation in the heading; where the starts cross a change of clocks (EST, then EDT) each day
    # says its own, or a reader converting "10:00 EST" after the change would be an hour off
    names = {s.tzname() for s in starts}
    per_day = len(names) > 1
    grouped = [
        SnippetDay(
            label=day_label(day_starts[0]) + (f" ({day_starts[0].tzname()})" if per_day else ""),
            starts=[
                (time_label(s), booking_page_url(meeting_type.slug, start=s.isoformat(), **carried))
                for s in day_starts
            ],
        )
        # the day of the change is two groups, each with its own abbreviation (EDT, then EST)
        for day_starts in (
            list(g) for _, g in groupby(starts, key=lambda s: (s.date(), s.tzname() if per_day else ""))
        )
    ]
    zone_abbr = "" if per_day else starts[0].tzname() if starts else now.astimezone(zone).tzname()
    return {
        "meeting_type": meeting_type,
        "days": grouped,
        "count": len(starts),
        "window_days": days,
        "zone": zone.key,
        "zone_abbr": zone_abbr if zone_abbr and zone_abbr != zone.key else "",
        "more_url": booking_page_url(meeting_type.slug, date=first.isoformat(), **carried),
    }


def render_snippet_html(context: dict) -> str:
    return render_to_string("booking/email_snippet.html", context)


def render_snippet_text(context: dict) -> str:
    """Plain-text alternative (for the text/plain part of a multipart email)."""
    title = context["meeting_type"].title
    zone = context["zone"] + (f" ({context['zone_abbr']})" if context["zone_abbr"] else "")
    lines = [f"{title}: pick a time (times in {zone})", ""]
    for day in context["days"]:
        lines.append(day.label)
        lines.extend(f"  {label}  {url}" for label, url in day.starts)
    if not context["days"]:
        lines.append(f"No free times in the next {context['window_days']} day(s).")
    lines += ["", f"See more times: {context['more_url']}", ""]
    return "\n".join(lines)
