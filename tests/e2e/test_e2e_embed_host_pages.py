"""The embedded booking widget on a third-party marketing page, as marketing sites really are: a theme that
copies buttons into its mobile menu, a global ``window.Baton`` of the site's own, a landing page whose visitor
is reading (and typing) elsewhere, a prospect pressing Enter twice. Each test failed before its fix
(static/baton/embed.js, static/baton/book-page.js).

Baton runs on pytest-django's live server (http://localhost:<port>); the marketing site is a tiny
``http.server`` on another loopback origin (http://127.0.0.1:<port>), listed in EMBED_ALLOWED_ORIGINS, that
embeds ``embed.js`` as docs/embed.md says. The real booking page is used inside the frame.

The browser, ``page`` and ``shot`` fixtures come from tests/e2e/conftest.py (skipped without
/usr/bin/chromium unless REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SLUG = "embed-hunt-call"


@pytest.fixture
def bookable(settings, live_server, host_site):
    """The real URLconf; a rep free every day 00:00–23:00 UTC; ``host_site`` allowed to frame the page."""
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    settings.EMBED_ALLOWED_ORIGINS = [host_site.origin]
    settings.BOOKING_RATE_LIMIT = ""
    rep = make_rep("Ana Host", tz="UTC", hours=(0, 23), days=range(7))
    return make_meeting_type(make_pool("first_available", [rep]), slug=SLUG, title="Embed hunt")


def host_page(baton_url: str, body: str, head: str = "") -> str:
    """A marketing page with the widget code in ``body``; it records every ``baton:booked`` it hears."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>ACME sales</title>{head}</head>
<body><h1>ACME</h1>
{body}
<script>
  window.booked = [];
  document.addEventListener("baton:booked", function (e) {{ window.booked.push(e.detail); }});
</script>
<script src="{baton_url}/static/baton/embed.js" async></script></body></html>"""


def baton_frame(page, live_server):
    frame = page.wait_for_selector("iframe[data-baton-frame]").content_frame()
    assert frame is not None
    frame.wait_for_url(lambda url: url.startswith(live_server.url + "/book/"))
    return frame


def step_of(frame) -> str:
    return frame.evaluate("document.getElementById('app').dataset.step")


# --- 1. the booking event fires twice (and the booking is re-submitted) on a second Enter


def test_second_enter_while_the_confirmation_loads_does_not_fire_baton_booked_twice(
    page, live_server, host_site, bookable
):
    """The prospect books in the inline widget by pressing Enter in the email field; on a slow connection
    the confirmation details take a moment ("Booked — loading the details…") and they press Enter again.

    Must hold: once the booking is made, the form takes no further submission: one POST, one ``baton:booked``
    (docs/embed.md: "when a booking is made, a bubbling baton:booked CustomEvent is dispatched").

    Before its fix: the form is still live in the "confirm" step until the confirmation fragment has loaded,
    so the second Enter submits the booking again (a second POST, replayed by the Idempotency-Key) and the
    page dispatches ``baton:booked`` a second time: the host page's analytics count two meetings for one (had
    the prospect edited a field first, the new body gets a new key and books again or is told the time "was
    just taken by someone else")."""
    from booking.models import Booking

    host_site.pages["/"] = host_page(
        live_server.url,
        f'<div id="widget" data-baton-meeting="{SLUG}" data-baton-name="Pat Prospect" '
        'data-baton-email="pat@example.org"></div>',
    )
    posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/bookings") and posts.append(r.url))
    held = []  # a slow connection: the confirmation fragment arrives only when released
    released = []

    def slow(route):
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/confirmation", slow)
    page.goto(host_site.origin + "/")
    frame = baton_frame(page, live_server)
    frame.locator("#calendar-body button.day.free").first.click()
    frame.locator("#times button.time").first.click()
    frame.press("#f-email", "Enter")  # book
    page.wait_for_function("window.booked.length === 1")
    frame.wait_for_function("document.getElementById('submit').textContent.indexOf('Booked') === 0")
    page.wait_for_timeout(300)  # the details request is under way (held)
    assert held, "the confirmation details are being loaded"

    frame.press("#f-email", "Enter")  # impatient second Enter while the details load
    page.wait_for_timeout(1500)
    released.append(True)
    for route in held:
        route.continue_()
    frame.wait_for_selector("#confirmation-heading")
    page.wait_for_timeout(300)

    assert Booking.objects.count() == 1
    assert page.evaluate("window.booked.length") == 1, page.evaluate("JSON.stringify(window.booked)")
    assert len(posts) == 1, f"the booking was submitted {len(posts)} times"


# --- 2. a pop-up trigger copied after load is dead, even after Baton.scan()


def test_a_popup_button_copied_into_the_mobile_menu_opens_the_popup_after_scan(
    page, live_server, host_site, bookable
):
    """The marketing theme copies the header's "Book a demo" pop-up button into its mobile menu after load
    (``cloneNode``, as many themes build their mobile navigation; an SPA's or Turbo's HTML snapshot does the
    same) and then, as docs/embed.md says for elements added later, calls ``Baton.scan()``.

    Must hold: ``Baton.scan()`` binds every trigger that is not bound yet (the marker must not be a copyable
    attribute, or be checked against the widget's own registry), and the copy opens the pop-up.

    Before its fix: the copy carries the ``data-baton-ready`` attribute ``bindPopup`` put on the original, so
    ``scan`` skips it, but the click listener was not copied: the mobile menu's "Book a demo" does nothing."""
    host_site.pages["/"] = host_page(
        live_server.url,
        f'<nav id="header"><button id="cta" data-baton-popup="{SLUG}">Book a demo</button></nav>'
        '<nav id="mobile-menu"></nav>',
    )
    page.goto(host_site.origin + "/")
    page.wait_for_selector("#cta[data-baton-ready]")
    page.evaluate(
        """() => {
            var copy = document.getElementById("cta").cloneNode(true);
            copy.id = "cta-mobile";
            document.getElementById("mobile-menu").appendChild(copy);
            window.Baton.scan();
        }"""
    )
    page.click("#cta-mobile")
    page.locator("[role=dialog][aria-modal=true]").wait_for(timeout=3000)
    frame = baton_frame(page, live_server)
    frame.wait_for_selector("#booking-form")
    assert not page.js_errors


# --- 3. a preselected start steals focus and scrolls the host page on load


def test_inline_widget_with_a_preselected_start_does_not_steal_focus_or_scroll_the_host_page(
    page, live_server, host_site, bookable
):
    """A personalised landing page has a form at the top (focused for the visitor) and, further down, the
    inline widget with a proposed time (``data-baton-start``, a documented prefill attribute).

    Must hold: an embedded page does not move focus on its own before the visitor interacts with it; the host
    page's focus and scroll position are left alone (the preselected time is simply shown).

    Before its fix: as soon as the booking page in the frame has loaded its slots it preselects the time and
    calls ``focus()`` on the "Confirm your booking" heading (book-page.js ``onPick``), without the visitor
    having touched the widget: the host page jumps ~2,800 px down to the widget and the visitor's focus (and
    their next keystrokes) leave the host page's own field for the iframe."""
    in_two_days = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    start = in_two_days.replace(hour=10, minute=0, second=0, microsecond=0)  # a free start (rep: 00–23 UTC)
    host_site.pages["/"] = host_page(
        live_server.url,
        '<form><label>Your email for our newsletter <input id="newsletter" type="email"></label></form>'
        '<script>document.getElementById("newsletter").focus();'
        " window.focusedFirst = document.activeElement.id;</script>"
        '<div style="height:2500px">Why ACME? …</div>'
        f'<div id="widget" data-baton-meeting="{SLUG}" data-baton-start="{start.isoformat()}"></div>',
    )
    page.goto(host_site.origin + "/")
    assert page.evaluate("window.focusedFirst") == "newsletter"
    frame = baton_frame(page, live_server)
    frame.wait_for_function("document.getElementById('app').dataset.step === 'confirm'")
    page.wait_for_timeout(300)
    assert step_of(frame) == "confirm"  # the proposed time is preselected (as documented)

    assert page.evaluate("window.scrollY") == 0, "the host page was scrolled to the widget"
    assert page.evaluate("document.activeElement.id") == "newsletter", page.evaluate(
        "document.activeElement.tagName"
    )


# --- 4. a host page with its own ``Baton`` object


def test_a_host_page_with_its_own_baton_object_still_gets_the_widget(page, live_server, host_site, bookable):
    """The marketing site already has a global ``window.Baton`` of its own (an in-house library of that
    name, with a ``version`` field, as libraries have) and pastes the inline embed code.

    Must hold: embed.js recognises its own earlier copy by a marker of its own (or at least checks that
    ``scan`` is a function) and otherwise mounts the widget; a foreign ``Baton`` must not disable it.

    Before its fix: embed.js takes any ``window.Baton`` with a ``version`` for an earlier copy of itself and
    calls ``window.Baton.scan()``: "TypeError: window.Baton.scan is not a function", nothing is mounted and
    the prospect sees no booking widget at all."""
    host_site.pages["/"] = host_page(
        live_server.url,
        f'<div id="widget" data-baton-meeting="{SLUG}"></div>',
        head='<script>window.Baton = {version: "2.4.1", track: function () {}};</script>',
    )
    page.goto(host_site.origin + "/")
    page.wait_for_load_state("load")
    page.wait_for_selector("iframe[data-baton-frame]", timeout=3000)
    frame = baton_frame(page, live_server)
    frame.wait_for_selector("#booking-form")
    assert not page.js_errors
    assert page.evaluate("window.Baton.version") == "2.4.1"  # the site's own object is left alone
    assert page.evaluate("typeof window.BatonEmbed.scan") == "function"
