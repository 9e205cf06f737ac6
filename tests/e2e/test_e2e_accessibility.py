"""Accessibility and small-screen layout of the prospect's booking and manage pages in a real browser
(Playwright + Debian's chromium, fixtures from conftest.py): the keyboard alone, where focus goes after each
step, names and ids for assistive technology, refused times and failed loads announced without offering a
stale time again, and a 375 px phone with long unbroken text or the night the clocks go back."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from booking.models import Booking, MeetingType
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.e2e.e2e_helpers import (
    QUESTIONS,
    book_directly,
    booking_for,
    meeting,
    no_horizontal_scroll,
    open_first_day,
    pick_first_slot,
)
from tests.e2e.test_e2e_prospect_edges import next_fall_back

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")
FOCUSED = (
    "document.activeElement === document.body ? 'BODY'"
    " : (document.activeElement.id || document.activeElement.outerHTML.slice(0, 80))"
)


def focused(page) -> str:
    return page.evaluate(FOCUSED)


def settled(page) -> None:
    page.locator("#month[aria-busy='false']").wait_for(state="attached")


def tab_to(page, selector: str, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def first_starts(page, live_server) -> list[str]:
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    return page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")


A11Y_AUDIT = """() => {
    const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
    const ids = {};
    document.querySelectorAll('[id]').forEach(el => { ids[el.id] = (ids[el.id] || 0) + 1; });
    const duplicates = Object.keys(ids).filter(id => ids[id] > 1);
    const unlabelled = [];
    document.querySelectorAll('input, select, textarea').forEach(el => {
        if (!visible(el) || el.type === 'hidden') return;
        const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
            || el.getAttribute('aria-labelledby');
        if (!named) unlabelled.push(el.outerHTML.slice(0, 80));
    });
    const nameless = [];
    document.querySelectorAll('button, a[href]').forEach(el => {
        if (!visible(el)) return;
        const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
        if (!name) nameless.push(el.outerHTML.slice(0, 80));
    });
    const dangling = [];
    document.querySelectorAll('[aria-describedby], [aria-labelledby], [aria-controls]').forEach(el => {
        ['aria-describedby', 'aria-labelledby', 'aria-controls'].forEach(attr => {
            (el.getAttribute(attr) || '').split(/\\s+/).filter(Boolean).forEach(id => {
                if (!document.getElementById(id)) dangling.push(attr + '=' + id);
            });
        });
    });
    return {duplicates, unlabelled, nameless, dangling};
}"""


def assert_accessible(page, where: str) -> None:
    audit = page.evaluate(A11Y_AUDIT)
    assert audit == {"duplicates": [], "unlabelled": [], "nameless": [], "dangling": []}, (where, audit)


# --- names and ids


def test_every_step_has_unique_ids_labelled_fields_and_named_buttons(page, live_server):
    """Every control has a label, every button a name, no id twice, no ARIA reference to a missing id:
    on the about step, the picker, the confirm step, after the confirmation is inserted, and on the manage
    page with its picker and cancel form open."""
    meeting(questions=QUESTIONS + [
        {"key": "tools", "label": "Tools", "type": "multiselect", "options": ["crm", "erp"]},
        {"key": "ok", "label": "I agree", "type": "checkbox"},
        {"key": "why", "label": "Why", "type": "textarea", "help": "A line or two"},
    ])  # fmt: skip
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.locator("#q-size").wait_for()
    assert_accessible(page, "about")
    page.select_option("#q-size", "1-10")
    page.click("#about-continue")
    open_first_day(page)
    assert_accessible(page, "pick")
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    assert_accessible(page, "confirm")
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert_accessible(page, "done")
    token = page.get_attribute("#manage-link", "href").rsplit("/", 1)[-1]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#reschedule-open")
    page.locator("#calendar-body button.day.free").first.wait_for()
    assert_accessible(page, "manage picker")
    page.click("#cancel-open")
    assert_accessible(page, "manage cancel")
    assert page.js_errors == []


# --- keyboard and focus


def test_keyboard_only_manage_reschedule_then_cancel(page, live_server):
    """The manage page with the keyboard alone: Reschedule (focus on the picker heading), a day with Enter
    (focus on its first time), a time with Space (focus on the confirm heading), "Move to this time" with
    Enter; then Cancel booking (focus in the reason) and Enter on its button."""
    meeting_type = meeting()
    starts = first_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    tab_to(page, "#reschedule-open")
    page.keyboard.press("Enter")
    assert focused(page) == "picker-heading"
    page.locator("#calendar-body button.day.free").first.wait_for()
    settled(page)
    tab_to(page, "#calendar-body button.day.free")
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.matches('#times button.time')")
    tab_to(page, f'#times button[data-start="{starts[2]}"]')
    page.keyboard.press(" ")
    page.wait_for_function("document.activeElement.id === 'confirm-heading'")
    tab_to(page, "#reschedule-submit")
    page.keyboard.press("Enter")
    page.locator("#changed", has_text="moved").wait_for()
    assert booking_for(token).start == datetime.fromisoformat(starts[2])
    tab_to(page, "#cancel-open")
    page.keyboard.press("Enter")
    assert focused(page) == "f-reason"
    page.keyboard.type("Keyboard says no")
    tab_to(page, "#cancel-submit")
    page.keyboard.press("Enter")
    page.locator("#changed", has_text="cancelled").wait_for()
    booking = booking_for(token)
    assert booking.status == Booking.Status.CANCELLED and booking.cancel_reason == "Keyboard says no"


def test_prev_month_back_to_the_first_month_keeps_keyboard_focus(page, live_server):
    """Keyboard user: "Next month" (Enter), then "Previous month" (Enter) back to the current month. The
    previous-month button is disabled in the first month, under the user's finger: focus moves to "Next
    month" (``Picker.drawMonth``) instead of falling to <body>, so the next Tab goes on from the calendar."""
    meeting()
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.wait_for()
    settled(page)
    first_label = page.inner_text("#month-label")
    if not page.is_disabled("#prev-month"):  # opened on a later month (no free time left in this one)
        pytest.skip("the first free month is not the current month")
    tab_to(page, "#next-month")
    page.keyboard.press("Enter")
    page.locator("#month-label").filter(has_not_text=first_label).wait_for()
    settled(page)
    tab_to(page, "#prev-month")
    page.keyboard.press("Enter")
    page.locator("#month-label", has_text=first_label).wait_for()
    settled(page)
    assert page.is_disabled("#prev-month")
    assert focused(page) == "next-month", "focus left the calendar when the month changed"


def test_continue_moves_focus_into_the_picker(page, live_server):
    """About step → Continue (Enter). The button is disabled ("Checking…") and then hidden with its step:
    focus moves to the picker's heading (as it moves to the times, the confirm heading and the confirmation
    at the later steps), so a screen-reader user hears the step changed and goes on from there."""
    meeting(questions=QUESTIONS)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "1-10")
    page.focus("#about-continue")
    page.keyboard.press("Enter")
    page.locator("#picker").wait_for()
    page.locator("#calendar-body button.day.free").first.wait_for()
    settled(page)
    assert focused(page) == "picker-heading"


# --- refusals and failures


def test_server_error_on_booking_keeps_the_form_and_a_retry_books_once(page, live_server):
    """A 500 from POST …/bookings: a clear message with focus, nothing typed is lost, the button works
    again, and the retry (same body: same Idempotency-Key) books exactly once; a server 400 on an answer is
    shown next to that question on the confirm step."""
    meeting(questions=QUESTIONS)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "11-50")
    page.click("#about-continue")
    pick_first_slot(page)
    page.fill("#f-note", "Please bring the pricing sheet")
    keys: list[str] = []

    def fail(route):
        keys.append(route.request.headers["idempotency-key"])
        route.fulfill(status=500, body="<h1>Server Error (500)</h1>", content_type="text/html")

    page.route("**/bookings", fail)
    page.click("#submit")
    page.locator("#message", has_text="error 500").wait_for()
    assert focused(page) == "message"
    assert page.input_value("#f-note") == "Please bring the pricing sheet"
    assert page.input_value("#q-size") == "11-50" and page.input_value("#f-name") == "Pat"
    assert not page.is_disabled("#submit") and page.inner_text("#submit") == "Book this time"
    page.unroute("**/bookings")

    page.route(
        "**/bookings",
        lambda route: route.fulfill(
            status=400,
            content_type="application/json",
            body='{"code": "invalid", "detail": "Invalid input.", '
            '"errors": {"answers": {"seats": ["Too many."]}}}',
        ),
    )
    page.click("#submit")
    page.locator("#err-q-seats", has_text="Too many.").wait_for()
    assert page.get_attribute("#q-seats", "aria-invalid") == "true"
    assert focused(page) == "q-seats"
    page.unroute("**/bookings")

    with page.expect_request("**/bookings") as sent:
        page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert sent.value.headers["idempotency-key"] == keys[0]
    assert Booking.objects.count() == 1


def test_manage_reschedule_refused_start_is_announced_and_not_offered_again(page, live_server):
    """Manage page: the prospect picks a new time and, while they read, it stops being bookable (minimum
    notice; simulated by raising it). POST …/reschedule answers 400 {"errors": {"start": [...]}}: handled as
    a taken time, as on the booking page — the server's message in the page notice (role=alert) with focus,
    back to the picker on that day with the times reloaded, the refused start no longer among them."""
    meeting_type = meeting()
    starts = first_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#reschedule-open")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator(f'#times button[data-start="{starts[1]}"]').click()
    page.locator("#step-confirm").wait_for()
    minutes = int((datetime.fromisoformat(starts[1]) - datetime.now(BERLIN)).total_seconds() // 60) + 5
    MeetingType.objects.filter(pk=meeting_type.pk).update(minimum_notice_minutes=minutes)
    page.click("#reschedule-submit")
    page.locator("#message", has_text="too soon").wait_for()
    page.wait_for_function("!document.getElementById('reschedule-submit').disabled")
    assert booking_for(token).start == datetime.fromisoformat(starts[0])
    assert focused(page) == "message"
    page.locator("#picker").wait_for()
    settled(page)
    page.locator("#times button.time").first.wait_for()
    day = f'#calendar-body button[data-date="{starts[1][:10]}"]'
    assert page.get_attribute(day, "aria-pressed") == "true"  # back on the refused start's day
    offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert starts[1] not in offered, "the refused start is offered again"


def test_taken_time_is_not_offered_again_when_the_refresh_fails(page, live_server):
    """409 "just taken", and the refresh of the free times fails (the connection drops): the month offers
    nothing rather than the times it had before (``Picker.failed``; the month's cache is dropped too), the
    times list says it could not load instead of "Loading free times…", and "Try again" loads the month
    afresh, without the taken start."""
    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    start = pick_first_slot(page)
    book_directly(meeting_type, start)
    page.route("**/slots?*", lambda route: route.abort())
    page.click("#submit")
    page.locator("#message", has_text="just taken").wait_for()
    page.locator("#calendar-status", has_text="Could not reach the server").wait_for()
    settled(page)
    status = page.inner_text("#times-status")
    day = page.locator(f'#calendar-body button[data-date="{start[:10]}"]')
    offered = []
    if day.is_enabled():
        day.click()
        offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert start not in offered, "the time just taken is offered again"
    assert "Loading" not in status and "could not be loaded" in status, status
    page.unroute("**/slots?*")
    page.locator("#calendar-status button", has_text="Try again").click()
    page.locator("#calendar-status", has_text="with free times").wait_for()
    settled(page)
    page.locator(f'#calendar-body button[data-date="{start[:10]}"]').click()
    page.locator("#times button.time").first.wait_for()
    offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert offered and start not in offered


# --- a 375 px phone


@pytest.mark.parametrize("where", ["description", "cancel reason"])
def test_375px_phone_long_unbroken_text_does_not_scroll_sideways(new_page, live_server, where):
    """A 375 px phone. A meeting type's description with a long link, or a cancel reason written by the
    prospect with one (shown in ``.meta`` on the manage page), wraps anywhere (book.css: ``.description``,
    ``.meta`` and the notices, like the title and the details): the page does not scroll sideways."""
    long = "https://docs.example.com/onboarding/enterprise-readiness/checklist-for-security-review-2026"
    meeting_type = meeting()
    page = new_page(width=375, height=740)
    if where == "description":
        MeetingType.objects.filter(pk=meeting_type.pk).update(description=f"Before we meet, read {long}")
        page.goto(f"{live_server.url}/book/e2e")
        page.locator("#calendar-body button.day.free").first.wait_for()
    else:
        starts = first_starts(page, live_server)
        token = book_directly(meeting_type, starts[0])["manage_token"]
        page.goto(f"{live_server.url}/manage/{token}")
        page.click("#cancel-open")
        page.fill("#f-reason", f"Rebooked via {long}")
        page.click("#cancel-submit")
        page.locator("#changed", has_text="cancelled").wait_for()
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert no_horizontal_scroll(page), widths


def test_375px_phone_fall_back_night_time_labels_are_not_cut_off(new_page, live_server):
    """The night Europe/Berlin goes back, every start of that day carries its offset ("02:00 (UTC+02:00)",
    docs/booking-page.md). On a 375 px phone each label fits its button: ``drawTimes`` puts the offset on a
    line of its own in a smaller font and marks the list ``with-offsets`` (wider columns in book.css), so
    nothing is clipped at the screen edge and the page does not scroll sideways."""
    rep = make_rep("Una Utc", tz="UTC", hours=(0, 23), days=range(7))
    make_meeting_type(make_pool("first_available", [rep]), slug="dst", horizon_days=365)
    day = next_fall_back(BERLIN, 360)
    page = new_page(width=375, height=740)
    page.goto(f"{live_server.url}/book/dst?date={day.isoformat()}&timezone=Europe/Berlin")
    page.locator("#times button.time").first.wait_for()
    overflowing = page.eval_on_selector_all(
        "#times button.time",
        "bs => bs.filter(b => b.scrollWidth > b.clientWidth + 1 || b.scrollHeight > b.clientHeight + 1)"
        ".map(b => b.textContent)",
    )
    label = page.text_content("#times button.time")
    assert label[5:] in (" (UTC+02:00)", " (UTC+01:00)"), label  # the text still names the offset
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert overflowing == [] and no_horizontal_scroll(page), (widths, overflowing[:3])
