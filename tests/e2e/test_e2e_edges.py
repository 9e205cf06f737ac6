"""Edges of the prospect's pages in a real browser (Playwright + Debian's chromium, see conftest.py): Back
after cancelling, ``start`` links written in another offset, a reload after booking from a link, a start
refused as too soon. Each test failed before the fix its docstring names."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.models import Booking, MeetingType
from tests.e2e.e2e_helpers import book_directly, booking_for, meeting, open_first_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")


def q(iso: str) -> str:
    return iso.replace("+", "%2B")


def visible_message(page) -> str:
    return page.inner_text("#message") if page.is_visible("#message") else ""


def first_starts(page, live_server) -> list[str]:
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    return page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")


def test_back_after_cancelling_does_not_show_the_booking_as_still_confirmed(page, live_server):
    """/manage/<token> was sent without Cache-Control: after "Cancel booking" (which navigates to
    ?changed=cancelled) Back showed the cached page, "Confirmed", with the Reschedule and Cancel buttons.
    It is ``no-store`` now."""
    meeting_type = meeting()
    starts = first_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.click("#cancel-open")
    page.fill("#f-reason", "Found another time")
    page.click("#cancel-submit")
    page.locator("#changed", has_text="cancelled").wait_for()
    assert booking_for(token).status == Booking.Status.CANCELLED
    page.go_back()
    page.locator("#booking-status").wait_for()
    assert "Cancelled" in page.inner_text("#booking-status")
    assert page.locator("#cancel-open, #reschedule-open").count() == 0


def test_taken_start_link_in_another_offset_names_the_time_in_the_page_zone(page, live_server):
    """A taken ``start`` link written in another offset (UTC, as a CRM writes them): the notice printed the
    link's wall-clock time labelled with the page's zone, "07:00 (Europe/Berlin)" for 08:00 in Berlin."""
    meeting_type = meeting()
    starts = first_starts(page, live_server)
    book_directly(meeting_type, starts[0])
    in_utc = datetime.fromisoformat(starts[0]).astimezone(ZoneInfo("UTC")).isoformat()
    page.goto(f"{live_server.url}/book/e2e?start={q(in_utc)}&name=Pat&email=pat@example.org")
    page.locator("#message", has_text="no longer available").wait_for()
    text = page.inner_text("#message")
    assert f"{starts[0][11:16]} (Europe/Berlin)" in text, text


def test_free_start_link_in_another_offset_on_the_first_of_a_month_is_preselected(page, live_server):
    """A free ``start`` in an offset whose date is the previous month (08:00 Berlin on the 1st is 23:00 the
    evening before in Los Angeles): the picker opened the link's month, did not find the start among its
    Berlin slots and called it "no longer available"."""
    meeting_type = meeting()
    MeetingType.objects.filter(pk=meeting_type.pk).update(horizon_days=90)
    today = datetime.now(BERLIN).date()
    first_of_next = (today.replace(day=28) + timedelta(days=7)).replace(day=1)
    start = datetime(first_of_next.year, first_of_next.month, 1, 8, 0, tzinfo=BERLIN)
    in_la = start.astimezone(ZoneInfo("America/Los_Angeles")).isoformat()
    page.goto(f"{live_server.url}/book/e2e?start={q(in_la)}&name=Pat&email=pat@example.org")
    page.locator("#step-confirm:visible, #message:visible").first.wait_for()
    assert page.get_attribute("#app", "data-step") == "confirm", visible_message(page)
    assert "08:00 (Europe/Berlin)" in page.inner_text("#chosen-time")


def test_refresh_after_booking_from_a_start_link_does_not_say_the_time_is_gone(page, live_server):
    """Booked from an email-snippet link (?start=…), then a reload: the address still carried ?start= and
    the page called the prospect's own, just-booked time "no longer available", offering five others (as
    if the booking had failed). The booked start now leaves the address."""
    meeting()
    starts = first_starts(page, live_server)
    page.goto(f"{live_server.url}/book/e2e?start={q(starts[1])}&name=Pat&email=pat@example.org")
    page.locator("#step-confirm").wait_for()
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    assert Booking.objects.count() == 1
    page.reload()
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.wait_for_timeout(500)
    assert "no longer available" not in visible_message(page)


def test_start_refused_as_too_soon_is_not_offered_again_and_focus_is_kept(page, live_server):
    """The chosen start stops being bookable while the prospect fills the form (the minimum notice passes;
    simulated by raising it): the API answers 400 {"start": [...]}. The page said "Please check the
    highlighted fields" (none was), focus fell to <body> and "Change time" offered the dead start again from
    the month cache. Now it is handled as a taken time: the message has focus and the times are reloaded."""
    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    open_first_day(page)
    first = page.locator("#times button.time").first
    start = first.get_attribute("data-start")
    first.click()
    page.locator("#step-confirm").wait_for()
    minutes = int((datetime.fromisoformat(start) - datetime.now(BERLIN)).total_seconds() // 60) + 5
    MeetingType.objects.filter(pk=meeting_type.pk).update(minimum_notice_minutes=minutes)
    page.click("#submit")
    page.locator("#err-start, #message").filter(has_text="too soon").first.wait_for()
    assert Booking.objects.count() == 0
    focused = page.evaluate("document.activeElement === document.body ? 'BODY' : document.activeElement.id")
    if page.is_visible("#change-time"):
        page.click("#change-time")
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.locator("#picker").wait_for()
    offered = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    assert start not in offered, "the refused start is offered again"
    assert focused != "BODY"
