"""Shared set-up of the booking-page browser tests: a meeting type with slots every day but today (real clock,
the browser and the live server agree on "today"), and steps through the picker."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from booking.models import Booking
from booking.selectors import booking_by_token
from booking.services import booking_create
from calendars.models import DateOverride
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

RECORD_BOOKED = (
    "window.__booked = []; window.addEventListener('baton:booked', e => window.__booked.push(e.detail));"
)
QUESTIONS = [
    {
        "key": "size",
        "label": "Company size",
        "type": "select",
        "options": ["1-10", "11-50"],
        "required": True,
    },
    {"key": "seats", "label": "Seats", "type": "number"},
]


def meeting(slug: str = "e2e", questions=None, reps: int = 1):
    hosts = [make_rep(f"Host {chr(65 + i)}nna", hours=(8, 20), days=range(7)) for i in range(reps)]
    # Today is a day off: the first free day is then always a whole 08:00-20:00 (24 starts), whatever the
    # hour the suite runs at (late in the day, today would offer only the last one or two starts).
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    DateOverride.objects.bulk_create([DateOverride(rep=host, date=today) for host in hosts])
    pool = make_pool("first_available", hosts)
    return make_meeting_type(
        pool,
        slug=slug,
        title="E2E intro",
        questions=questions or [],
        minimum_notice_minutes=60,
        location_detail="https://meet.example.com/e2e",
    )


def open_first_day(page) -> None:
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.wait_for()


def pick_first_slot(page) -> str:
    open_first_day(page)
    button = page.locator("#times button.time").first
    start = button.get_attribute("data-start")
    button.click()
    page.locator("#step-confirm").wait_for()
    return start


def book_directly(meeting_type, start: str, email: str = "other@example.org") -> dict:
    result = booking_create(
        meeting_type=meeting_type,
        start=datetime.fromisoformat(start),
        name="Someone Else",
        email=email,
        timezone="Europe/Berlin",
    )
    return result.body


def booking_for(token: str) -> Booking:
    return booking_by_token(token)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
