"""A group pool that can never offer a time, seen by a prospect in a real browser (Playwright + Debian's
chromium, see conftest.py); the config import and admin sides: tests/booking/test_booking_group_pools.py."""

from __future__ import annotations

import pytest

from routing.models import PoolMember
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_booking_page_of_a_group_pool_that_can_never_offer_tells_the_prospect_to_try_the_next_month(
    new_page,
    live_server,
):
    """A prospect opens the booking page of a group pool whose only SE is inactive (a 90-day horizon). The
    page looks through the first months and shows an empty calendar saying "No free times in <month>. Try
    the next month." The prospect clicks on, month after month, to the end of the horizon: nothing will
    ever be offered, which the server knows (a role of the pool has no active member), but neither the
    slots API nor the page says so (static/baton/picker.js only knows "no free times in this month")."""
    ana, sol = make_rep("Ana", days=range(7)), make_rep("Sol", days=range(7))
    pool = make_pool("group", [ana, sol], roles=["ae", "se"])
    PoolMember.objects.filter(pool=pool, rep=sol).update(active=False)
    make_meeting_type(pool, slug="dead-duo", horizon_days=90, minimum_notice_minutes=0)
    page = new_page()
    page.goto(f"{live_server.url}/book/dead-duo")
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    # "No free times in <month>. …" before the fix, "No times can be booked for this meeting right now." after
    page.wait_for_function("document.getElementById('calendar-status').textContent.startsWith('No ')")
    page.wait_for_timeout(1500)  # the first months are looked through one after another: let it settle
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    status = page.inner_text("#calendar-status")
    assert "Try the next month" not in status, status
    assert "no times can be booked" in status.lower(), status
