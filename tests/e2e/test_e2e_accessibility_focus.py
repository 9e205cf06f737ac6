"""Accessibility of the prospect's booking and manage pages in a real browser (Playwright + Debian's
chromium, fixtures from conftest.py): what a keyboard-only, screen-reader or low-vision user meets (WCAG 2.1
AA) — where focus goes when a step ends without the user moving it, whether an error is announced, and the
contrast of error text in the dark theme the pages offer (base.css, ``color-scheme: light dark``)."""

from __future__ import annotations

import datetime as dt

import pytest

from leads.models import RoutingRule
from tests.e2e.e2e_helpers import QUESTIONS, book_directly, meeting, open_first_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUSED = (
    "document.activeElement === document.body ? 'BODY'"
    " : (document.activeElement.id || document.activeElement.outerHTML.slice(0, 80))"
)


def focused(page) -> str:
    return page.evaluate(FOCUSED)


def settled(page) -> None:
    page.locator("#month[aria-busy='false']").wait_for(state="attached")


# WCAG 2.1 relative luminance / contrast ratio of an element's text against the first opaque background
# behind it (its own or an ancestor's).
CONTRAST = """sel => {
    const el = document.querySelector(sel);
    const rgba = c => { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : m.concat([1]); };
    const lum = ([r, g, b]) => {
        const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = [255, 255, 255, 1];
    for (let n = el; n; n = n.parentElement) {
        const c = rgba(getComputedStyle(n).backgroundColor);
        if (c[3] > 0) { bg = c; break; }
    }
    const fg = rgba(getComputedStyle(el).color);
    const [a, b] = [lum(fg), lum(bg)];
    return {color: getComputedStyle(el).color, background: bg.join(","),
            ratio: Math.round((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) * 100) / 100};
}"""

LIVE = """sel => {
    const el = document.querySelector(sel);
    const region = el.closest('[aria-live]:not([aria-live="off"]), [role=alert], [role=status], [role=log]');
    return region ? (region.id || region.tagName) : null;
}"""


# --- focus lost to <body>


def test_disqualified_message_takes_focus_instead_of_dropping_it_to_body(page, live_server):
    """A routing rule disqualifies the prospect at "Continue". book-page.js hides the about step (with the
    focused Continue button) and calls ``focus()`` on ``#disqualified`` — a <section> with no tabindex, so
    the call does nothing: focus falls to <body>. A screen-reader user who pressed Continue hears nothing
    (the role=status region was hidden when its text was set) and their next Tab starts from the top."""
    meeting_type = meeting(questions=QUESTIONS)
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="too small",
        conditions={"all": [{"field": "answers.size", "op": "in", "value": ["1-10"]}]},
        outcome=RoutingRule.Outcome.DISQUALIFY,
        disqualify_message="Thanks! Our self-serve plan fits you best.",
    )
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "1-10")
    page.focus("#about-continue")
    page.keyboard.press("Enter")
    page.locator("#disqualified", has_text="self-serve plan").wait_for()
    page.wait_for_timeout(200)
    assert focused(page) == "disqualified", "focus fell to <body> when the prospect was disqualified"


def test_disqualified_by_a_zone_switch_takes_focus_from_the_hidden_zone_field(page, live_server):
    """A routed prospect switches the zone on the picker; the page routes again (territory rules look at the
    zone) and a rule on the new zone disqualifies: the picker with the focused zone field is hidden, so the
    notice takes focus, as at Continue, and its text is set once shown (its live region announces it)."""
    meeting_type = meeting(questions=QUESTIONS)
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="not served",
        conditions={"all": [{"field": "timezone", "op": "equals", "value": "Asia/Tokyo"}]},
        outcome=RoutingRule.Outcome.DISQUALIFY,
        disqualify_message="Sorry, we do not serve your region yet.",
    )
    page.goto(f"{live_server.url}/book/e2e?name=Pat&email=pat@example.org")
    page.select_option("#q-size", "11-50")
    page.click("#about-continue")
    page.locator("#calendar-body button.day.free").first.wait_for()
    page.fill("#zone", "Asia/Tokyo")
    page.press("#zone", "Enter")
    page.locator("#disqualified", has_text="do not serve your region").wait_for()
    assert focused(page) == "disqualified", "focus fell to <body> when a zone switch disqualified"


def test_try_again_after_a_failed_month_keeps_keyboard_focus(page, live_server):
    """The free times of a month could not be loaded; the calendar says so with a "Try again" button. A
    keyboard user presses Enter on it: ``Picker.busy`` replaces the status text (the button with it) by
    "Loading free times…", so the focused button is removed from the page and focus falls to <body>; once
    the month is drawn nothing puts it back. The user is thrown out of the calendar they were using."""
    meeting()
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.wait_for()
    settled(page)
    page.route("**/slots?*", lambda route: route.abort())
    page.click("#next-month")
    page.locator("#calendar-status button", has_text="Try again").wait_for()
    page.unroute("**/slots?*")
    page.focus("#calendar-status button")
    page.keyboard.press("Enter")
    page.locator("#calendar-status", has_text="with free times").wait_for()
    settled(page)
    assert focused(page) != "BODY", "focus fell to <body> after Try again"


# --- a taken start from a link: the message and the alternatives are skipped


def test_taken_start_link_leaves_focus_on_the_notice_not_a_time_further_down(new_page, live_server):
    """A link's start (an email, a CRM) was taken meanwhile. ``showAlternatives`` puts "The time you chose
    … is no longer available. The nearest other times:" in the notice and focuses it, then calls
    ``picker.pickDay``, which moves focus on to the first time of the times list further down. On a phone
    the page scrolls to that time, past the notice and the "nearest other times" list (which come before it:
    Tab never reaches them, Shift+Tab has to cross the whole calendar), so the prospect does not see why."""
    meeting_type = meeting()
    page = new_page(width=375, height=700)
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    taken = page.locator("#times button.time").first.get_attribute("data-start")
    book_directly(meeting_type, taken)
    page.goto(f"{live_server.url}/book/e2e?start={taken.replace('+', '%2B')}")
    page.locator("#alternatives button").first.wait_for()
    settled(page)
    page.wait_for_timeout(300)
    where = page.evaluate(
        "document.activeElement.id === 'message' || !!document.activeElement.closest('#alternatives')"
    )
    top = page.evaluate("document.getElementById('message').getBoundingClientRect().top")
    assert where, f"focus went to {focused(page)}, past the notice and the nearest times"
    assert top >= 0, "the notice saying the time is taken was scrolled out of view"


@pytest.fixture
def embeddable(settings, live_server, host_site):
    """A rep free every day 00:00–23:00 UTC; ``host_site`` may frame the booking page."""
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    settings.EMBED_ALLOWED_ORIGINS = [host_site.origin]
    settings.BOOKING_RATE_LIMIT = ""
    rep = make_rep("Ana Host", tz="UTC", hours=(0, 23), days=range(7))
    return make_meeting_type(make_pool("first_available", [rep]), slug="a11y-embed", title="Embed a11y")


def test_embedded_taken_start_does_not_steal_focus_or_scroll_the_host_page(
    page, live_server, host_site, embeddable
):
    """The inline widget on a landing page proposes a time (``data-baton-start``) that was taken meanwhile.
    ``showAlternatives`` correctly leaves focus alone (``mayTakeFocus``: the visitor has not used the frame)
    but then calls ``picker.pickDay``, which focuses the first time button unconditionally: the host page
    jumps down to the widget and the visitor's focus (and their typing) leave the host page's own field."""
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    book_directly(embeddable, start.isoformat())
    host_site.pages["/"] = f"""<!doctype html><html><head><meta charset="utf-8"><title>ACME</title></head>
<body><h1>ACME</h1>
<form><label>Your email for our newsletter <input id="newsletter" type="email"></label></form>
<script>document.getElementById("newsletter").focus();</script>
<div style="height:2500px">Why ACME? …</div>
<div id="widget" data-baton-meeting="a11y-embed" data-baton-start="{start.isoformat()}"></div>
<script src="{live_server.url}/static/baton/embed.js" async></script></body></html>"""
    page.goto(host_site.origin + "/")
    frame = page.wait_for_selector("iframe[data-baton-frame]").content_frame()
    frame.wait_for_url(lambda url: url.startswith(live_server.url + "/book/"))
    frame.locator("#alternatives button").first.wait_for()
    page.wait_for_timeout(300)
    where = focused(page)
    assert where == "newsletter", f"the widget took the host page's focus (now on {where})"
    assert page.evaluate("window.scrollY") == 0, "the host page was scrolled to the widget"


# --- errors not announced


def test_unknown_time_zone_error_is_announced(page, live_server):
    """The prospect types a zone that is not in the list ("Berlin") and presses Enter (or Tabs away). The
    error "Unknown time zone: …" appears in ``#zone-error``, but focus does not move (it stays in the field,
    or has already left it) and the error is in no live region (no role=alert/status, no aria-live): a
    screen-reader user hears nothing and believes the zone was applied (WCAG 4.1.3)."""
    meeting()
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#calendar-body button.day.free").first.wait_for()
    settled(page)
    page.fill("#zone", "Berlin")
    page.press("#zone", "Enter")
    page.locator("#zone-error", has_text="Unknown time zone").wait_for()
    assert focused(page) == "zone"  # focus did not move to the error
    assert page.evaluate(LIVE, "#zone-error") is not None, "the zone error is in no live region"


# --- dark theme


def test_dark_theme_error_and_warning_text_has_enough_contrast(new_page, live_server):
    """With the system in dark mode the pages switch to the dark palette (base.css), but the field errors
    (``.field-error``, #b42318) and the "just taken" warning (``.notice.warning``, #9a6700) keep their
    light-theme colours: about 2.9:1 and 3.6:1 on the dark background, below the 4.5:1 WCAG AA asks for —
    the text that tells a low-vision prospect what went wrong is the hardest text on the page to read."""
    meeting_type = meeting()
    page = new_page(color_scheme="dark")
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    start = page.locator("#times button.time").first.get_attribute("data-start")
    page.locator("#times button.time").first.click()
    page.click("#submit")  # no name, no email
    page.locator("#err-name", has_text="name").wait_for()
    field_error = page.evaluate(CONTRAST, "#err-name")
    page.fill("#f-name", "Pat")
    page.fill("#f-email", "pat@example.org")
    book_directly(meeting_type, start)
    page.click("#submit")
    page.locator("#message", has_text="just taken").wait_for()
    warning = page.evaluate(CONTRAST, "#message")
    assert field_error["ratio"] >= 4.5 and warning["ratio"] >= 4.5, {
        "field error": field_error,
        "warning": warning,
    }
