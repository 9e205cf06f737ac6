"""The booking page in a real browser (Playwright + Debian's chromium, see conftest.py): booking, double
clicks and retries, a slot taken meanwhile, field errors, time zones, preselected starts, 360 px, keyboard."""

from __future__ import annotations

import pytest

from booking.models import Booking
from tests.e2e.e2e_helpers import (
    QUESTIONS,
    RECORD_BOOKED,
    book_directly,
    meeting,
    no_horizontal_scroll,
    open_first_day,
    pick_first_slot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_book_a_slot_end_to_end(page, live_server, shot):
    meeting_type = meeting()
    page.add_init_script(RECORD_BOOKED)
    page.goto(f"{live_server.url}/book/e2e?name=Pat%20Prospect&email=pat@example.org&utm_source=news")
    page.locator("#calendar-body button.day.free").first.wait_for()
    assert page.inner_text("#zone-name") == "Europe/Berlin"  # detected from the browser
    shot(page, "booking-1-month")
    start = pick_first_slot(page)
    assert page.input_value("#f-name") == "Pat Prospect"  # prefilled from the query
    assert start[11:16] in page.inner_text("#chosen-time") and "Europe/Berlin" in page.inner_text(
        "#chosen-time"
    )
    page.fill("#f-note", "Looking forward")
    shot(page, "booking-2-form")
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    shot(page, "booking-3-confirmation")
    text = page.inner_text("#confirmation")
    assert "Host Anna" in text and "Europe/Berlin" in text and "meet.example.com/e2e" in text
    assert page.get_attribute("#google-link", "href").startswith("https://calendar.google.com/")
    assert page.get_attribute("#outlook-link", "href").startswith("https://outlook.live.com/")
    booking = Booking.objects.get()
    assert booking.meeting_type == meeting_type and booking.note == "Looking forward"
    assert booking.utm == {"utm_source": "news"} and booking.prospect_timezone == "Europe/Berlin"
    booked = page.evaluate("window.__booked")
    assert booked == [{"id": booking.pk, "start": start, "hosts": [
        {"name": "Host Anna", "email": booking.hosts.get().rep.email, "role": ""}]}]  # fmt: skip
    ics = page.request.get(live_server.url + page.get_attribute("#ics-link", "href"))
    assert ics.ok and b"BEGIN:VEVENT" in ics.body()
    assert page.js_errors == []
    assert page.bad_responses == []  # no 404 for an icon, a script or a style sheet


def test_double_click_and_retry_book_once(page, live_server):
    meeting(reps=2)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    pick_first_slot(page)
    page.dblclick("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.count() == 1

    # a retry after a lost response reuses the Idempotency-Key: replayed, not booked again
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat2@example.org")
    pick_first_slot(page)
    keys: list[str] = []

    def lose_response(route):
        keys.append(route.request.headers["idempotency-key"])
        route.fetch()  # the server books …
        route.abort()  # … but the answer never arrives

    page.route("**/bookings", lose_response)
    page.click("#submit")
    page.locator("#message", has_text="Could not reach the server").wait_for()
    assert not page.is_disabled("#submit")
    page.unroute("**/bookings")
    with page.expect_response("**/bookings") as response:
        page.click("#submit")
    assert response.value.headers.get("idempotent-replayed") == "true"
    assert response.value.request.headers["idempotency-key"] == keys[0]
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.count() == 2


def test_slot_taken_meanwhile_shows_message_and_refreshed_slots(page, live_server, shot):
    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    start = pick_first_slot(page)
    book_directly(meeting_type, start)
    page.click("#submit")
    page.locator("#message", has_text="just taken").wait_for()
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.locator("#picker").wait_for()
    page.locator("#times button.time").first.wait_for()
    shot(page, "booking-taken")
    offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert start not in offered and offered
    assert Booking.objects.count() == 1
    pick_first_slot(page)
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.count() == 2


def test_field_errors_appear_next_to_their_fields(page, live_server, shot):
    meeting(questions=QUESTIONS)
    page.goto(f"{live_server.url}/book/e2e")
    page.fill("#f-name", "Pat")
    page.fill("#f-email", "pat@example")  # the browser accepts it, the API does not
    page.click("#about-continue")
    assert page.inner_text("#err-q-size") == "This question is required."  # checked before any request
    assert page.get_attribute("#q-size", "aria-invalid") == "true"
    page.select_option("#q-size", "11-50")
    page.click("#about-continue")  # the server (route API) refuses the email: shown next to the field
    page.locator("#err-email").wait_for()
    shot(page, "booking-field-error")
    assert "valid email" in page.inner_text("#err-email")
    assert page.evaluate("document.activeElement.id") == "f-email"
    assert page.is_hidden("#picker")
    page.fill("#f-email", "pat@example.org")
    page.click("#about-continue")
    pick_first_slot(page)
    page.fill("#f-name", "")  # cleared on the confirm step: caught before the request
    page.click("#submit")
    assert page.inner_text("#err-name") == "Please enter your name."
    page.fill("#f-name", "Pat")
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.get().answers == {"size": "11-50"}


def test_server_field_error_on_booking_is_shown_next_to_the_field(page, live_server):
    meeting()
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example")
    pick_first_slot(page)
    page.click("#submit")
    page.locator("#err-email").wait_for()
    assert "valid email" in page.inner_text("#err-email")
    assert page.get_attribute("#f-email", "aria-invalid") == "true"
    assert Booking.objects.count() == 0


def test_time_zone_switch_changes_the_times(page, live_server):
    meeting()
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    berlin = page.locator("#times button.time").first.get_attribute("data-start")
    page.fill("#zone", "Asia/Tokyo")
    page.press("#zone", "Enter")
    page.locator("#zone-name", has_text="Asia/Tokyo").wait_for()
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.locator("#calendar-body button.day.free").first.click()
    tokyo = page.locator("#times button.time").first.get_attribute("data-start")
    assert tokyo.endswith("+09:00") and berlin[-6:] in ("+01:00", "+02:00")
    assert page.locator("#times button.time").first.inner_text() == tokyo[11:16]
    page.goto(f"{live_server.url}/book/e2e?date={berlin[:10]}")  # opens on that day
    page.locator("#times button.time").first.wait_for()
    assert page.get_attribute(f'#calendar-body button[data-date="{berlin[:10]}"]', "aria-pressed") == "true"
    page.fill("#zone", "Not/AZone")
    page.press("#zone", "Enter")
    assert "Unknown time zone" in page.inner_text("#zone-error")


def test_preselected_start_from_an_email_link(page, live_server):
    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    starts = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    page.goto(f"{live_server.url}/book/e2e?start={starts[1].replace('+', '%2B')}&email=pat@example.org")
    page.locator("#step-confirm").wait_for()
    assert starts[1][11:16] in page.inner_text("#chosen-time")
    assert page.input_value("#f-email") == "pat@example.org"

    book_directly(meeting_type, starts[0])
    page.goto(f"{live_server.url}/book/e2e?start={starts[0].replace('+', '%2B')}")
    page.locator("#message", has_text="no longer available").wait_for()
    alternatives = page.eval_on_selector_all("#alternatives button", "bs => bs.map(b => b.dataset.start)")
    assert alternatives and starts[0] not in alternatives and starts[1] in alternatives
    page.click(f'#alternatives button[data-start="{starts[1]}"]')
    page.locator("#step-confirm").wait_for()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_360px_wide_phone_has_no_horizontal_scroll(new_page, live_server, shot, scheme):
    meeting(questions=QUESTIONS)
    page = new_page(width=360, height=740, color_scheme=scheme)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    assert no_horizontal_scroll(page)
    page.select_option("#q-size", "1-10")
    page.click("#about-continue")
    open_first_day(page)
    assert no_horizontal_scroll(page)
    shot(page, f"booking-360-{scheme}-picker")
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    assert no_horizontal_scroll(page)
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert no_horizontal_scroll(page)
    shot(page, f"booking-360-{scheme}-confirmation")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(13, 17, 23)") == (scheme == "dark")


def tab_to(page, selector: str, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_booking(page, live_server):
    meeting(questions=QUESTIONS)
    page.goto(f"{live_server.url}/book/e2e")
    tab_to(page, "#f-name")
    page.keyboard.type("Kay Board")
    page.keyboard.press("Tab")
    page.keyboard.type("kay@example.org")
    tab_to(page, "#q-size")
    page.keyboard.press("ArrowDown")  # "1-10"
    assert page.input_value("#q-size") == "1-10"
    tab_to(page, "#about-continue")
    page.keyboard.press("Enter")
    page.locator("#picker").wait_for()
    page.locator("#calendar-body button.day.free").first.wait_for()
    tab_to(page, "#calendar-body button.day.free")
    first_day = page.evaluate("document.activeElement.dataset.date")
    page.keyboard.press("ArrowRight")  # arrow keys move between free days
    second_day = page.evaluate("document.activeElement.dataset.date")
    assert second_day > first_day
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.date") == first_day
    page.keyboard.press("Enter")  # the day: focus moves to its first time
    page.wait_for_function("document.activeElement.matches('#times button.time')")
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.id === 'confirm-heading'")
    tab_to(page, "#submit")
    page.keyboard.press("Enter")
    page.locator("#confirmation-heading").wait_for()
    page.wait_for_function("document.activeElement.id === 'confirmation-heading'")  # focus follows
    booking = Booking.objects.get()
    assert booking.prospect_name == "Kay Board" and booking.answers == {"size": "1-10"}


def test_routing_rules_disqualify_or_route_to_a_pool(page, live_server, shot):
    from leads.models import RoutingRule
    from tests.booking.booking_factories import make_pool, make_rep

    meeting_type = meeting(questions=QUESTIONS)
    enterprise = make_pool("first_available", [make_rep("Erin Enterprise", hours=(8, 20), days=range(7))])
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="too small",
        conditions={"all": [{"field": "answers.size", "op": "in", "value": ["1-10"]}]},
        outcome=RoutingRule.Outcome.DISQUALIFY,
        disqualify_message="Thanks! Our self-serve plan fits you best.",
    )
    RoutingRule.objects.create(meeting_type=meeting_type, order=2, name="rest", pool=enterprise)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "1-10")
    page.click("#about-continue")
    page.locator("#disqualified", has_text="self-serve plan").wait_for()
    assert page.is_hidden("#picker") and page.is_hidden("#booking-form section#step-about")
    shot(page, "booking-disqualified")

    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "11-50")
    with page.expect_request("**/slots?*") as slots:
        page.click("#about-continue")
    assert "route=" in slots.value.url
    pick_first_slot(page)
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert "Erin Enterprise" in page.inner_text("#confirmation")
    assert Booking.objects.get().hosts.get().rep.name == "Erin Enterprise"
