"""The prospect's booking page and manage page in a real browser when the API answers with errors
(``page.route`` makes it answer 503 / 429 / 404, or drops a response the server did answer).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from booking.models import Booking
from tests.e2e.e2e_helpers import book_directly, booking_for, meeting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNAVAILABLE = json.dumps(
    {
        "code": "unavailable",
        "detail": "The service is briefly unavailable; nothing was changed. Please try again shortly.",
    }
)
RATE_LIMITED = json.dumps(
    {
        "code": "rate_limited",
        "detail": "Request was throttled. Expected available in 30 seconds.",
        "retry_after": 30,
    }
)
NOT_FOUND = json.dumps({"code": "not_found", "detail": "No such booking."})


def first_free_starts(page, live_server, n: int = 3) -> list[str]:
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.wait_for()
    return page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")[:n]


def answer_once(status: int, body: str, headers: dict | None = None):
    """A route handler: the first request gets ``status`` / ``body``, the next ones reach the server."""
    state = {"answered": False}

    def handler(route):
        if state["answered"]:
            route.continue_()
            return
        state["answered"] = True
        route.fulfill(status=status, body=body, content_type="application/json", headers=headers or {})

    return handler


def settled(page) -> None:
    page.wait_for_load_state("networkidle")
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.wait_for_timeout(400)


def visible_text(page, selector: str) -> str:
    return page.inner_text(selector) if page.is_visible(selector) else ""


def test_start_link_is_not_called_taken_when_its_month_could_not_be_loaded(page, live_server):
    """A prospect clicks a time in an e-mail (``?start=``) while the database fails over: the slots request
    for that month answers 503 ``unavailable`` with Retry-After (the next one would succeed). The page tells
    them "The time you chose (…) is no longer available" and lists "nearest other times" from the NEXT
    month, though the time is still free: nothing could be loaded, nothing was found taken. The prospect
    books a worse time, or gives up. Expected: the calendar says the times could not be loaded (with Try
    again); no claim that the time is gone."""
    meeting()
    starts = first_free_starts(page, live_server)
    wanted = starts[1]
    page.route("**/slots?*", answer_once(503, UNAVAILABLE, {"Retry-After": "5"}))
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat%40example.org&start={quote(wanted)}")
    settled(page)
    message = visible_text(page, "#message")
    assert "no longer available" not in message, message
    assert not page.is_visible("#alternatives"), "times of another month offered instead of the free link"
    assert wanted[:7] in page.evaluate(
        "document.querySelector('#calendar-body button.day') ? "
        "document.querySelector('#calendar-body button.day').dataset.date : ''"
    ), "the calendar moved away from the link's month"


def test_retry_after_a_lost_response_does_not_book_a_second_rep_when_a_field_was_edited(page, live_server):
    """Two reps in a first-available pool. The prospect presses "Book this time"; the server books (Host A)
    but the answer is lost (connection reset): "Could not reach the server … press the button again".
    The prospect adds a note (or fixes a typo in their name) and presses again. The page sends the
    changed body under a NEW Idempotency-Key (one key per distinct body), so the server books the same
    prospect a second time, with the other rep at the same time: two confirmations, two reps' calendars
    blocked. (With one rep the prospect instead reads "that time was just taken by someone else" — by
    their own booking.) Expected: a request whose answer never came is settled first (same key), so
    the prospect has exactly one booking."""
    meeting(reps=2)
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat%40example.org")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    state = {"lost": False}

    def lose_the_first_answer(route):
        if state["lost"]:
            route.continue_()
            return
        state["lost"] = True
        route.fetch()  # the server books
        route.abort("connectionreset")  # the answer never reaches the browser

    page.route("**/bookings", lose_the_first_answer)
    page.click("#submit")
    page.locator("#message", has_text="Could not reach the server").wait_for()
    assert Booking.objects.count() == 1
    page.fill("#f-note", "Please bring the pricing sheet")
    page.click("#submit")
    page.wait_for_function(
        "document.getElementById('app').dataset.step === 'done' || !document.getElementById('message').hidden"
    )
    page.wait_for_load_state("networkidle")
    bookings = Booking.objects.filter(prospect_email="pat@example.org", status=Booking.Status.CONFIRMED)
    hosts = [list(b.hosts.values_list("rep__name", flat=True)) for b in bookings]
    assert len(hosts) == 1, f"the prospect was booked {len(hosts)} times at once: {hosts}"


def test_manage_cancel_button_is_not_enabled_again_while_the_page_reloads(page, live_server):
    """Manage page: the prospect presses "Cancel booking"; the API cancels (200) and the page starts
    reloading with ?changed=cancelled. Meanwhile (until the new page arrives: on a phone, a second or
    more) the button reads "Cancel booking" again and is enabled (``guard`` in manage.js re-enables it
    on success), so the second click of a double click, or an impatient second press, sends the cancel
    again; the API answers 409 and the page shows, in red, "This booking is already cancelled." and
    drops the actions before the reload replaces it. The booking page does not do that (``done`` keeps
    the button disabled). Expected: once the change succeeded, nothing can be submitted again."""
    meeting_type = meeting()
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    cancels: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/cancel") and cancels.append(r.url))
    # the prospect presses again as soon as the button can be pressed again
    page.evaluate(
        """() => {
          const b = document.getElementById('cancel-submit');
          let busy = false, again = false;
          new MutationObserver(() => {
            if (b.disabled) { busy = true; return; }
            if (busy && !again) { again = true; b.click(); }
          }).observe(b, {attributes: true, childList: true, characterData: true, subtree: true});
        }"""
    )
    page.click("#cancel-open")
    page.click("#cancel-submit")
    page.locator("#changed", has_text="cancelled").wait_for()
    page.wait_for_load_state("networkidle")
    assert booking_for(token).status == Booking.Status.CANCELLED
    assert len(cancels) == 1, f"the cancel was sent {len(cancels)} times: the button was enabled again"


def test_manage_link_whose_booking_is_gone_is_not_offered_try_again(page, live_server):
    """A manage page left open while the booking was deleted (an admin's deletion, a data-retention
    purge): the booking API now answers 404 {"code": "not_found", "detail": "No such booking."} for this
    token. The prospect presses Reschedule and reads "Could not load the free times (error 404). Try
    again" — as if it were a passing hiccup; Try again can never succeed, and Cancel booking stays on offer
    (it answers "No such booking." each time). A 409 for a cancelled booking is handled (the actions go,
    the reason is said, focused); a 404 should be too: the link is no longer valid."""
    meeting_type = meeting()
    starts = first_free_starts(page, live_server)
    token = book_directly(meeting_type, starts[0], email="pat@example.org")["manage_token"]
    page.goto(f"{live_server.url}/manage/{token}")
    page.route(
        "**/api/v1/bookings/**",
        lambda route: route.fulfill(status=404, body=NOT_FOUND, content_type="application/json"),
    )
    page.click("#reschedule-open")
    settled(page)
    status = visible_text(page, "#calendar-status")
    assert "Try again" not in status, f"a booking that no longer exists is offered Try again: {status!r}"
    assert page.is_visible("#message"), "the prospect is not told the booking no longer exists"
    assert not page.is_visible("#cancel-open"), "Cancel booking is still offered for a booking that is gone"


def test_rate_limited_free_times_say_how_long_to_wait(page, live_server):
    """The slots request is refused 429 ``rate_limited`` with Retry-After: 30 (and ``retry_after`` 30 in
    the body): a prospect paging months quickly, or many prospects behind one office address. The calendar
    says only "Could not load the free times (error 429). Try again" — an error code instead of what to
    do; pressing Try again at once is refused again. The booking request's 429 says "Please wait 30
    seconds"; the calendar should say so too."""
    meeting()
    page.route("**/slots?*", answer_once(429, RATE_LIMITED, {"Retry-After": "30"}))
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-status button", has_text="Try again").wait_for()
    status = page.inner_text("#calendar-status")
    assert "30 seconds" in status, status


@pytest.fixture
def embeddable(settings, live_server, host_site):
    from leads.models import RoutingRule
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    settings.EMBED_ALLOWED_ORIGINS = [host_site.origin]
    settings.BOOKING_RATE_LIMIT = ""
    default = make_pool("first_available", [make_rep("Dora Default", tz="UTC", hours=(0, 23), days=range(7))])
    partner = make_pool("first_available", [make_rep("Paul Partner", tz="UTC", hours=(0, 23), days=range(7))])
    meeting_type = make_meeting_type(default, slug="errors-embed", title="Embed errors", questions=[])
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=10,
        name="Partner campaign",
        conditions={"all": [{"field": "utm.utm_source", "op": "equals", "value": "partner"}]},
        pool=partner,
    )
    return meeting_type


def test_embedded_widget_does_not_pull_the_visitor_away_on_a_failed_automatic_routing(
    page, live_server, host_site, embeddable
):
    """A landing page with the inline widget far down, the visitor typing in the page's own newsletter
    field at the top. The meeting type has routing rules and no questions, and the widget names the
    visitor (``data-baton-name`` / ``data-baton-email``), so the booking page routes at once on load. That
    POST …/route meets a database failover (503 ``unavailable``, Retry-After: 5). The frame's error notice
    takes focus (``B.message(…, true)`` in ``routeIfNeeded``, without ``mayTakeFocus``): the host page jumps
    ~2,000 px down to the widget and the visitor's typing leaves their field, for an error about
    "your answers" they never gave. The taken-start notice already respects the host page; this one
    must too."""
    host_site.pages["/"] = f"""<!doctype html><html><head><meta charset="utf-8"><title>ACME</title></head>
<body><h1>ACME</h1>
<form><label>Your email for our newsletter <input id="newsletter" type="email"></label></form>
<script>document.getElementById("newsletter").focus();</script>
<div style="height:2500px">Why ACME?</div>
<div id="widget" data-baton-meeting="errors-embed" data-baton-name="Pat"
     data-baton-email="pat@example.org"></div>
<script src="{live_server.url}/static/baton/embed.js" async></script></body></html>"""
    page.route("**/route", answer_once(503, UNAVAILABLE, {"Retry-After": "5"}))
    page.goto(host_site.origin + "/")
    frame = page.wait_for_selector("iframe[data-baton-frame]").content_frame()
    frame.wait_for_url(lambda url: url.startswith(live_server.url + "/book/"))
    frame.locator("#message:not([hidden])").wait_for()
    page.wait_for_timeout(300)
    where = page.evaluate("document.activeElement.id || document.activeElement.tagName")
    assert where == "newsletter", f"the widget took the host page's focus (now on {where})"
    assert page.evaluate("window.scrollY") == 0, "the host page was scrolled down to the widget"


def test_an_email_corrected_after_a_request_that_never_left_is_the_one_booked(page, live_server):
    """Pat, on a train, fills in the booking form with a typo in the address (pat@exmaple.org) and
    presses "Book this time" while the connection is down: the request never leaves the browser, "Could
    not reach the server … press the button again". Pat notices the typo, corrects the address and presses
    again. The page sent the pending request again "as it was" first, assuming the server would replay a
    booking it made or refuse it; but the server never saw that request, so it booked it: Pat was booked
    under the misspelled address (the confirmation, the invitation and the manage link to a stranger's
    domain). Now the corrected request goes with the pending key: it books unless the first one did."""
    meeting()
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat%40exmaple.org")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    state = {"offline": True}

    def offline_once(route):
        if state["offline"]:
            state["offline"] = False
            route.abort("internetdisconnected")  # never reaches the server
            return
        route.continue_()

    page.route("**/bookings", offline_once)
    page.click("#submit")
    page.locator("#message", has_text="Could not reach the server").wait_for()
    assert Booking.objects.count() == 0
    page.fill("#f-email", "pat@example.org")  # the typo corrected
    page.click("#submit")
    page.wait_for_function(
        "document.getElementById('app').dataset.step === 'done' || !document.getElementById('message').hidden"
    )
    page.wait_for_load_state("networkidle")
    booked = list(Booking.objects.values_list("prospect_email", flat=True))
    assert booked == ["pat@example.org"], f"booked as {booked}: {page.inner_text('#message')!r}"
