"""The manage page (/manage/<token>) in a real browser: cancel with a reason, reschedule with the picker,
a slot taken meanwhile, and the 404 page."""

from __future__ import annotations

from datetime import datetime

import pytest

from booking.models import Booking
from tests.e2e.e2e_helpers import book_directly, booking_for, meeting, no_horizontal_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def first_free_starts(page, live_server, n: int = 3) -> list[str]:
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.wait_for()
    return page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")[:n]


def test_manage_cancel_with_reason(page, live_server, shot):
    meeting_type = meeting()
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    assert "Host Anna" in page.inner_text("#booking-details")
    assert "Europe/Berlin" in page.inner_text("#detail-when")
    shot(page, "manage-1-view")
    page.click("#cancel-open")
    assert page.evaluate("document.activeElement.id") == "f-reason"
    page.fill("#f-reason", "Found another time")
    page.click("#cancel-submit")
    page.locator("#changed", has_text="cancelled").wait_for()
    shot(page, "manage-2-cancelled")
    booking = booking_for(token)
    assert booking.status == Booking.Status.CANCELLED and booking.cancel_reason == "Found another time"
    assert page.locator("#cancel-open").count() == 0
    assert page.js_errors == []


def test_manage_reschedule_with_the_picker(page, live_server, shot):
    meeting_type = meeting()
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#reschedule-open")
    assert page.get_attribute("#reschedule-open", "aria-expanded") == "true"
    page.locator("#calendar-body button.day.free").first.click()
    page.locator(f'#times button[data-start="{starts[2]}"]').click()
    assert starts[2][11:16] in page.inner_text("#chosen-time")
    shot(page, "manage-3-reschedule")
    page.click("#reschedule-submit")
    page.locator("#changed", has_text="moved").wait_for()
    booking = booking_for(token)
    assert booking.status == Booking.Status.CONFIRMED and booking.sequence == 1
    assert booking.start == datetime.fromisoformat(starts[2])
    assert starts[2][11:16] in page.inner_text("#detail-when")


def test_manage_reschedule_to_a_slot_taken_meanwhile(page, live_server):
    meeting_type = meeting()
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#reschedule-open")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator(f'#times button[data-start="{starts[1]}"]').click()
    book_directly(meeting_type, starts[1])
    page.click("#reschedule-submit")
    page.locator("#message", has_text="just taken").wait_for()
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.locator("#times button.time").first.wait_for()
    offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert starts[1] not in offered
    assert booking_for(token).sequence == 0


def test_manage_page_on_a_phone_and_unknown_token(new_page, live_server):
    meeting_type = meeting()
    page = new_page(width=360, height=740)
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0])["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#reschedule-open")
    page.locator("#calendar-body button.day.free").first.wait_for()
    assert no_horizontal_scroll(page)
    response = page.goto(f"{live_server.url}/manage/{'x' * 43}")
    assert response.status == 404 and "not valid" in page.inner_text("main")
