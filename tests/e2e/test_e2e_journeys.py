"""The prospect's journeys in a real browser (Playwright + Debian's chromium, fixtures from
tests/e2e/conftest.py): the time-zone picker across a month boundary, month navigation at the booking horizon,
an unticked checkbox question and routing rules, a zone switch whose re-routing fails, a manage page left open
while the booking is cancelled elsewhere, and the confirmation when its details cannot be loaded.

Found by a hunting helper; each test above the pins failed before its fix.

    REQUIRE_BROWSER=1 DEBUG=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_e2e_journeys.py
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from booking.models import Booking
from calendars.models import DateOverride
from leads.models import RoutingRule
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.e2e.e2e_helpers import (
    QUESTIONS,
    book_directly,
    meeting,
    open_first_day,
    pick_first_slot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")


def settled(page) -> None:
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.wait_for_timeout(400)


def free_days(page) -> int:
    return page.locator("#calendar-body button.day.free").count()


def visible_text(page, selector: str) -> str:
    return page.inner_text(selector) if page.is_visible(selector) else ""


def free_all_day(name: str):
    """A rep free 00:00-23:00 UTC every day, with today (Berlin) off."""
    rep = make_rep(name, tz="UTC", hours=(0, 23), days=range(7))
    DateOverride.objects.create(rep=rep, date=dt.datetime.now(BERLIN).date())
    return rep


# --- the time-zone picker across a month boundary


def test_switching_to_a_zone_already_in_the_next_month_opens_a_month_with_times(page, live_server):
    """31 January, 22:00 in Berlin: the prospect opens the page (January, one free day left: the 31st)
    and switches the zone to Pacific/Kiritimati (UTC+14), where it is already 1 February, 11:00.

    Must hold: the picker follows the zone's calendar: it opens the month that is current there (or the
    first month with free times), as it does on first load (``loadFirstFree``), so the prospect sees
    bookable days.

    Today: ``Picker.setZone`` keeps ``this.year/this.month``, so the picker stays on January, which is over
    in the new zone: ``fetchMonth`` answers "no slots" for a past month without asking the server, the
    calendar is empty, "Previous month" is disabled and the page says "No free times in January. Try the
    next month." — the prospect is shown an empty calendar for a zone that has weeks of free times
    (book.js ``Picker.prototype.setZone``)."""
    import time_machine

    instant = dt.datetime(2027, 1, 31, 21, 0, tzinfo=dt.UTC)  # 22:00 Berlin, 1 Feb 11:00 Kiritimati
    with time_machine.travel(instant, tick=True):
        rep = make_rep("Una Utc", tz="UTC", hours=(0, 23), days=range(7))
        make_meeting_type(
            make_pool("first_available", [rep]), slug="zm", horizon_days=60, minimum_notice_minutes=30
        )
        page.clock.set_fixed_time(instant)  # the browser's clock agrees with the server's
        page.goto(f"{live_server.url}/book/zm")
        page.locator("#calendar-body button.day.free").first.wait_for()
        assert page.inner_text("#month-label") == "January 2027"
        page.fill("#zone", "Pacific/Kiritimati")
        page.press("#zone", "Enter")
        page.locator("#zone-name", has_text="Pacific/Kiritimati").wait_for()
        settled(page)
        shown = (page.inner_text("#month-label"), page.inner_text("#calendar-status"))
        assert free_days(page) > 0, f"empty calendar after the zone switch: {shown}"
        assert page.inner_text("#month-label") == "February 2027", shown
        assert not page.js_errors


# --- month navigation at the booking horizon


def test_next_month_stops_at_the_last_month_with_bookable_times(page, live_server):
    """A meeting type bookable 10 days ahead (``horizon_days``). The prospect pages forward through the
    calendar looking for a later date.

    Must hold: the calendar does not let the prospect page into months that can never have a bookable time
    (past the horizon "Next month" is disabled, as "Previous month" is before today), and it never tells
    them to "Try the next month" where no later month has anything.

    Today: "Next month" is never disabled (the page does not know the horizon: ``booking_page_context``
    sends none, book.js ``drawMonth`` disables only "Previous month"), and each empty month past the horizon
    says "No free times in January. Try the next month.", then February, March … forever, each a request
    to the slots API."""
    meeting_type = meeting()
    meeting_type.horizon_days = 10
    meeting_type.save(update_fields=["horizon_days"])
    starts = book_api_starts(page, live_server)
    last = dt.datetime.fromisoformat(starts[-1])
    last_month = f"{last:%B %Y}"
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.wait_for()
    seen = []
    for _ in range(4):
        seen.append((page.inner_text("#month-label"), page.inner_text("#calendar-status")))
        if page.is_disabled("#next-month"):
            break
        page.click("#next-month")
        settled(page)
    assert page.inner_text("#month-label") == last_month, f"paged past {last_month}: {seen}"
    assert all("Try the next month" not in status for _, status in seen), seen


def book_api_starts(page, live_server) -> list[str]:
    """Every bookable start of ``e2e`` in the next 60 days (Berlin), from the slots API."""
    today = dt.datetime.now(BERLIN).date()
    end = today + dt.timedelta(days=59)
    response = page.request.get(
        f"{live_server.url}/api/v1/meeting-types/e2e/slots?start={today}&end={end}&timezone=Europe/Berlin"
    )
    assert response.ok, response.text()
    return [slot["start"] for slot in response.json()["slots"]]


# --- an unticked checkbox question


def test_an_unticked_checkbox_is_sent_as_false_and_routes_by_it(page, live_server, settings):
    """A meeting type asks "Already a customer?" (an optional checkbox) and routes new business
    (``answers.customer equals false``) to the new-business team. The prospect leaves it unticked.

    Must hold (docs/routing-rules.md): "An unticked checkbox is the answer ``false`` (``equals false``
    matches it), not a missing one" — the API stores such an answer as ``false`` (``validate_answers``),
    so the booking page must send it: the rule matches, the booking goes to the new-business rep and its
    answers say ``{"customer": false}``.

    Today: book-page.js ``answers()`` adds a checkbox only when it is ticked, so the route request and the
    booking carry no answer at all: the rule does not match ("a missing field matches only not_equals …"),
    the prospect is booked with the existing-customers team, and the stored answers are ``{}``."""
    settings.BOOKING_RATE_LIMIT = ""
    customers = make_pool("first_available", [free_all_day("Cara Customer")])
    new_business = make_pool("first_available", [free_all_day("Nina New")])
    questions = [{"key": "customer", "label": "Already a customer?", "type": "checkbox"}]
    meeting_type = make_meeting_type(customers, slug="cb", questions=questions)
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="New business",
        conditions={"all": [{"field": "answers.customer", "op": "equals", "value": False}]},
        pool=new_business,
    )
    page.goto(f"{live_server.url}/book/cb?name=Pat&email=pat@acme.io")
    assert not page.is_checked("#q-customer")
    page.click("#about-continue")
    open_first_day(page)
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    booking = Booking.objects.get()
    assert (booking.answers, booking.hosts.get().rep.name) == ({"customer": False}, "Nina New")
    assert not page.js_errors


# --- a zone switch whose re-routing fails


def test_a_failed_re_route_on_a_zone_switch_can_be_retried(page, live_server, settings):
    """A routed prospect (questions answered, "Continue") is on the picker and switches the zone; the page
    routes again first (territory rules look at the zone), and that request fails (a network blip).

    Must hold (docs/booking-page.md): "A month whose times could not be loaded offers none … and says so,
    with **Try again**": the calendar must not claim free days it does not show, and the prospect must be
    able to retry (a Try again button, or entering the zone again) and get the new zone's times.

    Today: ``setZone`` sets the new zone and empties the month before routing; when ``routeIfNeeded``
    fails it stops there: the calendar shows no free day under the old status "24 days with free times in
    December.", there is no Try again, and entering the zone again is ignored (``zone === this.zone``
    returns at once): the prospect is stuck on an empty calendar until they switch to another zone and
    back (book.js ``Picker.prototype.setZone``)."""
    settings.BOOKING_RATE_LIMIT = ""
    meeting(questions=QUESTIONS)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "1-10")
    page.click("#about-continue")
    page.locator("#calendar-body button.day.free").first.wait_for()
    page.route("**/route", lambda route: route.abort())
    page.fill("#zone", "Asia/Tokyo")
    page.press("#zone", "Enter")
    page.locator("#message", has_text="Could not reach the server").wait_for()
    settled(page)
    status = page.inner_text("#calendar-status")
    assert free_days(page) > 0 or "with free times" not in status, f"{status!r} over an empty calendar"
    page.unroute("**/route")
    retry = page.locator("#calendar-status button, #message button")
    if retry.count():
        retry.first.click()
    else:
        page.fill("#zone", "Asia/Tokyo")
        page.press("#zone", "Enter")
    settled(page)
    page.wait_for_timeout(600)
    assert free_days(page) > 0, page.inner_text("#calendar-status")
    assert not page.js_errors


# --- a manage page left open while the booking is cancelled elsewhere


def test_reschedule_on_a_manage_page_of_a_booking_cancelled_meanwhile_says_it_is_cancelled(page, live_server):
    """The prospect has the manage page open (or opens it from an older e-mail tab) while the booking is
    cancelled elsewhere (another tab, the host). They press "Reschedule".

    Must hold: the page tells them the booking is cancelled (the API answers ``409
    booking_already_cancelled`` "This booking is already cancelled.") and stops offering a time picker
    for it; a "Cancel booking" in the same situation already says so.

    Today: manage.js opens the picker, whose slots request gets the 409, and the calendar says "Could not
    load the free times (error 409). Try again" with a Try again button that fails the same way forever:
    a transient-looking error for a booking that no longer exists (manage.js ``showPicker`` / book.js
    ``Picker.load`` treat every non-200 as a loading error)."""
    from booking.services import booking_cancel

    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    start = page.locator("#times button.time").first.get_attribute("data-start")
    token = book_directly(meeting_type, start, email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    assert "Confirmed" in page.inner_text("#booking-status")
    booking_cancel(token=token, reason="cancelled by the host")
    page.click("#reschedule-open")
    settled(page)
    page.wait_for_timeout(500)
    said = " ".join(
        visible_text(page, s) for s in ("#message", "#booking-status", "#calendar-status", "#changed")
    )
    assert "cancelled" in said.lower(), said
    assert "error 409" not in said, said


# --- the confirmation when its details cannot be loaded


def test_confirmation_fallback_keeps_a_working_manage_link_and_focus(page, live_server):
    """The booking succeeds but the confirmation fragment (``GET /manage/<token>/confirmation``) fails
    (a 503 during a deploy, a dropped connection).

    Must hold: the prospect still gets what the confirmation is for: a link to manage the booking (their
    only way to cancel or move it from this page), and focus moves to the confirmation as at the end of
    every booking (docs/booking-page.md: "to the confirmation heading at the end").

    Today: book-page.js ``done`` falls back to plain text, "You are booked: … Manage it at https://…/manage/…",
    with the address as text (no link: inside an embedded widget it cannot even be opened), no heading, and
    focus left on <body> (the hidden "Book" button had it)."""
    meeting()
    page.route("**/confirmation", lambda route: route.fulfill(status=503, body="Service unavailable"))
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    pick_first_slot(page)
    page.click("#submit")
    page.locator("#confirmation", has_text="You are booked").wait_for()
    assert Booking.objects.count() == 1
    links = page.eval_on_selector_all("#confirmation a[href*='/manage/']", "as => as.map(a => a.href)")
    focused_inside = page.evaluate("document.getElementById('confirmation').contains(document.activeElement)")
    assert links and focused_inside, (page.inner_text("#confirmation"), links, focused_inside)


# Pins of behaviour that held


EVERY_TYPE = [
    {"key": "size", "label": "Size", "type": "select", "options": ["1-10", "11-50"], "required": True},
    {"key": "tools", "label": "Tools", "type": "multiselect", "options": ["crm", "erp"], "required": True},
    {"key": "seats", "label": "Seats", "type": "number", "required": True},
    {"key": "role", "label": "Role", "type": "text", "required": True},
    {"key": "goals", "label": "Goals", "type": "textarea", "required": True},
    {"key": "phone", "label": "Phone", "type": "phone", "required": True},
    {"key": "cc", "label": "Colleague email", "type": "email", "required": True},
    {"key": "consent", "label": "I agree", "type": "checkbox", "required": True},
]


def test_required_questions_of_every_type_are_checked_at_their_fields_keyboard_only(page, live_server):
    """Every question type, all required, answered with the keyboard only: Enter with nothing answered puts
    "This question is required." next to each field (focus on the first), a bad e-mail answer is refused
    next to its field by the server, and the answers are stored with their types."""
    meeting(questions=EVERY_TYPE)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.focus("#f-email")
    page.keyboard.press("Enter")
    errors = page.eval_on_selector_all(".field-error:not([hidden])", "es => es.map(e => e.id)")
    assert errors == [f"err-q-{q['key']}" for q in EVERY_TYPE]
    assert page.evaluate("document.activeElement.id") == "q-size"
    page.keyboard.press("ArrowDown")  # "1-10"
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # tools: crm
    for key, text in (("seats", "12"), ("role", "CTO"), ("goals", "Faster demos"), ("phone", "+49 30 1")):
        page.focus(f"#q-{key}")
        page.keyboard.type(text)
    page.focus("#q-cc")
    page.keyboard.type("not-an-email")
    page.focus("#q-consent")
    page.keyboard.press("Space")
    page.focus("#q-role")
    page.keyboard.press("Enter")
    page.locator("#err-q-cc", has_text="valid email").wait_for()
    assert page.evaluate("document.activeElement.id") == "q-cc"
    page.keyboard.press("Control+A")
    page.keyboard.type("cc@example.org")
    page.keyboard.press("Enter")
    page.locator("#calendar-body button.day.free").first.wait_for()
    pick_first_slot(page)
    page.focus("#f-name")
    page.keyboard.press("Enter")
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.get().answers == {
        "size": "1-10",
        "tools": ["crm"],
        "seats": 12,
        "role": "CTO",
        "goals": "Faster demos",
        "phone": "+49 30 1",
        "cc": "cc@example.org",
        "consent": True,
    }
    assert not page.js_errors
