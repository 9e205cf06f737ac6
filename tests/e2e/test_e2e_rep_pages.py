"""The rep-facing pages: the sign-in page (/accounts/login/) and the rep's calendar page (/calendars/), in a
real browser (Playwright + Debian's chromium) and with Django's test client: signing out of a login linked
to no rep, a confirmed disconnect, calendars named with their account, a phone's width, announced errors
and hints, an inactive rep told so, one connection per ICS feed. Each test failed before its fix."""

# ruff: noqa: F811  (the calendar fixtures are imported into this module, then requested by name)
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from calendars.models import Calendar, CalendarConnection
from tests.calendars.conftest import (  # noqa: F401  (fixtures)
    calendar_settings,
    fake_google,
    fake_ics,
    fake_ms,
    make_rep,
    ms_connection,
    tls_cert,
)
from tests.e2e.e2e_helpers import no_horizontal_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-dana-123"


@pytest.fixture
def rep_user(make_rep):
    user = get_user_model().objects.create_user("dana", "dana@example.com", PASSWORD)
    make_rep("Dana Reyes", user=user)
    return user


@pytest.fixture
def site(settings, live_server):
    """The live server, with OAuth callbacks pointing at it."""
    settings.BASE_URL = live_server.url
    return live_server


def sign_in(page, site, username: str = "dana", password: str = PASSWORD) -> None:
    page.goto(f"{site.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def connect_google_in_browser(page, fake_google, email: str) -> None:
    if email not in fake_google.accounts:
        fake_google.add_account(email, extra_calendars=("Team",))
    fake_google.signed_in_as = email
    page.get_by_role("button", name="Connect Google Calendar").click()
    page.wait_for_url("**/calendars/")


# ---------------------------------------------------------------------------------------------- the tests


def test_a_login_not_linked_to_a_rep_can_sign_out_again(new_page, site, db):
    """A colleague signs in with a login that is not (yet) linked to a rep, or with the wrong one of two
    logins. They land on "Your login is not linked to a sales rep" — and that page has no way out: no
    Sign out button (templates/calendars/no_rep.html), and /accounts/login/ sends a signed-in user straight
    back to /calendars/ (redirect_authenticated_user=True, config/urls.py), so they can never sign in with
    the right login short of clearing cookies. The page must offer Sign out (a POST form)."""
    get_user_model().objects.create_user("ops", "ops@example.com", "pw-ops-123")
    page = new_page()
    sign_in(page, site, "ops", "pw-ops-123")
    assert "not linked to a sales rep" in page.inner_text("main")
    page.goto(f"{site.url}/accounts/login/")  # try to sign in with the other login
    assert page.url.endswith("/calendars/"), "the login page bounces a signed-in user back"
    assert page.get_by_role("button", name="Sign out").count() == 1, "no way to sign out of a non-rep login"
    assert page.js_errors == []


def test_disconnect_asks_before_removing_the_connection(new_page, site, rep_user, fake_google):
    """One click on Disconnect (next to Refresh, same size, same look) deleted the Google connection, its
    calendars and their busy times and stopped its push channels at once: a rep who meant Refresh, or tabbed
    one button too far, was gone from booking pages' busy checks until they went through OAuth again. The
    first click now only opens "Remove … from Baton?" with a "Yes, disconnect" button."""
    page = new_page()
    sign_in(page, site)
    connect_google_in_browser(page, fake_google, "dana@work.example")
    page.get_by_text("Disconnect…").click()
    assert CalendarConnection.objects.filter(account_email="dana@work.example").exists()
    assert "Remove dana@work.example" in page.inner_text("main")
    page.get_by_role("button", name="Yes, disconnect").click()
    page.wait_for_load_state()
    assert not CalendarConnection.objects.filter(account_email="dana@work.example").exists()


def test_calendar_choices_say_which_account_they_belong_to(new_page, site, rep_user, ms_connection):
    """A rep with a work and a second Microsoft 365 account (or Google + Microsoft calendars both named
    "Calendar"/"Team") sees, under "Which calendars count", two checkboxes both labelled "Calendar" and a
    "Write bookings into" list with two identical "Calendar" options: no way to tell which one blocks or
    receives bookings. The choices are labelled with the calendar name only (calendars/forms.py
    CalendarRolesForm: ``(str(c.pk), c.name)``); they should name the account too."""
    ms_connection(rep_user.rep, "dana@contoso.example")  # as the OAuth callback does
    ms_connection(rep_user.rep, "dana.private@outlook.example")
    assert Calendar.objects.count() == 2
    page = new_page()
    sign_in(page, site)
    labels = page.eval_on_selector_all(
        "fieldset input[type=checkbox]", "els => els.map(e => e.labels[0].innerText.trim())"
    )
    options = page.eval_on_selector_all("#id_receives option", "os => os.map(o => o.innerText.trim())")
    assert len(set(labels)) == 2, f"checkbox labels are ambiguous: {labels}"
    assert len(set(options)) == 3, f"'Write bookings into' options are ambiguous: {options}"


def test_ics_help_text_is_announced_with_the_field(new_page, site, rep_user):
    """The ICS address field says aria-describedby="id_url_helptext" (Django adds it), but the template
    prints the help text as a bare <small> without that id (templates/calendars/connections.html, the ICS
    form), so a screen-reader user never hears "The private .ics link … (https:// or webcal://)": the
    reference points at nothing. The help text needs id="{{ ics_form.url.auto_id }}_helptext"."""
    page = new_page()
    sign_in(page, site)
    described_by = page.get_attribute("#id_url", "aria-describedby")
    missing = page.evaluate(
        "ids => ids.split(' ').filter(id => !document.getElementById(id))", described_by or ""
    )
    assert described_by and missing == [], f"aria-describedby names missing elements: {missing}"


def test_a_refused_ics_feed_is_announced(new_page, site, rep_user):
    """A rep pastes a wrong address and presses Add ICS feed: the page reloads (400) with the same title,
    focus at the top, no message in the status list, and the error only as a plain <ul class="errorlist">
    below the field at the bottom of the page (calendars/views.py ics_add → _page; the template has no
    alert for form errors). A screen-reader or keyboard user gets no hint that anything failed (the sign-in
    page does announce its error with role="alert"). The error must be announced: a role=alert / live
    region with the error, or focus moved to the invalid field."""
    page = new_page()
    sign_in(page, site)
    page.get_by_label("Secret iCal address").fill("ftp://calendar.example/private.ics")
    page.get_by_role("button", name="Add ICS feed").click()
    page.wait_for_load_state()
    assert "Enter an http(s):// or webcal:// calendar URL." in page.inner_text("main")
    announced = page.evaluate(
        """() => [...document.querySelectorAll(
                   '[role=alert],[aria-live=assertive],[aria-live=polite],[role=status]')]
                 .map(e => e.innerText).join(' | ')"""
    )
    focused = page.evaluate("document.activeElement && document.activeElement.id")
    assert "webcal" in announced or focused == "id_url", (
        f"error not announced (live regions: {announced!r}, focus on {focused!r})"
    )


def test_calendar_page_fits_a_phone(new_page, site, rep_user, fake_google):
    """On a phone (375 px wide, and 414 px too) the Connections table (account, status, last sync, the
    Refresh/Disconnect buttons) is about 450 px wide: the whole page scrolls sideways and the Disconnect
    button sits off-screen. templates/calendars/connections.html's table.connections has no styling in
    static/baton/base.css (no wrapping, no .table-scroll wrapper, no stacked layout)."""
    page = new_page(width=375, height=740)
    sign_in(page, site)
    connect_google_in_browser(page, fake_google, "dana.reyes@acme-industries.com")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert no_horizontal_scroll(page), f"page scrolls sideways: scrollWidth/innerWidth = {width}"


def test_a_deactivated_rep_is_told_they_are_not_offered(new_page, site, rep_user, fake_google):
    """An admin deactivates a rep (Rep.active = False: no booking page offers them). The rep signs in and
    /calendars/ still says "Baton offers your free times from the calendars below", lets them connect
    calendars and choose where bookings go, as if nothing had changed (calendars/views.py _rep/_page ignore
    rep.active; the template's intro is unconditional). The page should say the rep is inactive and not
    offered on booking pages (and not claim the opposite)."""
    rep = rep_user.rep
    rep.active = False
    rep.save(update_fields=["active"])
    page = new_page()
    sign_in(page, site)
    text = page.inner_text("main")
    assert "Baton offers your free times" not in text and "inactive" in text.lower(), text[:400]


def test_adding_the_same_ics_feed_twice_makes_one_connection(client, rep_user, fake_ics):
    """A rep presses Add ICS feed twice (a double click, or re-adding a feed they thought failed): Baton
    stores two connections for the one secret address — the page lists "ICS feed — host" twice, with two
    identical calendars under "Which calendars count", each synced and fetched separately. connection_create
    (calendars/services/connections.py) only matches an existing connection for Google/Microsoft
    (``if provider != Provider.ICS``), so ics_connect never recognises a feed it already has. The second
    add should refresh the existing connection (or say it is already added)."""
    client.force_login(rep_user)
    url = fake_ics.publish(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\n"
        b"X-WR-CALNAME:Dana private\r\nEND:VCALENDAR\r\n"
    )
    assert client.post("/calendars/connect/ics", {"url": url}).status_code == 302
    client.post("/calendars/connect/ics", {"url": url})
    assert CalendarConnection.objects.filter(provider="ics").count() == 1
