"""What a prospect sees in a real browser (Playwright + Debian's chromium, fixtures from conftest.py) at the
booking page's edges: question hints and required multiselects, nearest times and the chosen time after a
zone switch, the night the clocks go back, a start link clicked after its month, routing rules without
questions and a zone changed after routing. Each test failed before its fix; its docstring says what the
prospect saw."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.models import Booking
from calendars.models import DateOverride
from leads.models import RoutingRule
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.e2e.e2e_helpers import book_directly, meeting, open_first_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def q(iso: str) -> str:
    return iso.replace("+", "%2B")


def settled(page) -> None:
    page.locator("#month[aria-busy='false']").wait_for(state="attached")
    page.wait_for_timeout(300)


def free_all_day(name: str):
    """A rep free 00:00-23:00 UTC every day, with today off (whatever the hour the suite runs at)."""
    rep = make_rep(name, tz="UTC", hours=(0, 23), days=range(7))
    DateOverride.objects.create(rep=rep, date=datetime.now(BERLIN).date())
    return rep


def host_name(booking: Booking) -> str:
    return booking.hosts.get().rep.name


# --- questions


def test_question_help_text_is_shown_to_the_prospect(page, live_server):
    """A question's ``help`` ("Optional hint shown under the field", docs/config.md; accepted by the config
    checker and the admin) never reaches the page: ``templates/booking/_question.html`` renders the label,
    the input and the error slot, but not the hint. The prospect guessing what "Seats" means sees nothing."""
    meeting(
        questions=[
            {"key": "seats", "label": "Seats", "type": "number", "help": "Licensed users, roughly"},
        ]
    )
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("#q-seats").wait_for()
    assert "Licensed users, roughly" in page.inner_text("[data-question=seats]")
    assert not page.js_errors


def test_required_multiselect_is_announced_as_required(page, live_server):
    """A required multiselect marks itself only with a "*" that is ``aria-hidden``, and its ``<fieldset>``
    and checkboxes carry no required state (a select or text question gets ``required`` on its control).
    A screen-reader user hears "Tools, group, crm, checkbox" with no hint it is required, and learns it
    only from the error."""
    meeting(
        questions=[
            {
                "key": "tools",
                "label": "Tools",
                "type": "multiselect",
                "options": ["crm", "erp"],
                "required": True,
            },
        ]
    )
    page.goto(f"{live_server.url}/book/e2e")
    page.locator("[data-question=tools]").wait_for()
    announced = page.evaluate(
        """() => {
            const box = document.querySelector('[data-question=tools]');
            const legend = box.querySelector('legend').cloneNode(true);
            legend.querySelectorAll('[aria-hidden=true]').forEach(n => n.remove());
            const inputs = [...box.querySelectorAll('input')];
            return box.getAttribute('aria-required') === 'true'
                || /required/i.test(legend.textContent)
                || inputs.every(i => i.getAttribute('aria-required') === 'true');
        }"""
    )
    assert announced, "nothing tells assistive technology that the question is required"


# --- time zones


def test_nearest_times_follow_a_time_zone_switch(page, live_server):
    """A link's start is taken: the page lists the nearest others ("Tuesday 8 December, 08:30
    (Europe/Berlin)"). The prospect then switches the zone to Asia/Kolkata: the month and day re-render in
    IST, but the list of nearest times stays in Berlin time, and picking one shows "…, 08:30 (Asia/Kolkata)"
    on the confirm step, a time that is really 13:00 in Kolkata. The prospect books a time other than the
    one the page named (``Picker.setZone`` leaves ``#alternatives`` alone and ``chosenLabel`` labels the
    start string's own wall clock with the page's current zone)."""
    meeting_type = meeting()
    page.goto(f"{live_server.url}/book/e2e")
    open_first_day(page)
    starts = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    book_directly(meeting_type, starts[2])
    page.goto(f"{live_server.url}/book/e2e?start={q(starts[2])}&name=Pat&email=pat@example.org")
    page.locator("#alternatives button").first.wait_for()
    page.fill("#zone", "Asia/Kolkata")
    page.press("#zone", "Enter")
    settled(page)
    assert page.inner_text("#zone-name") == "Asia/Kolkata"
    if page.is_visible("#alternatives"):
        button = page.locator("#alternatives button").first
        start = button.get_attribute("data-start")
        button.click()
        page.locator("#step-confirm").wait_for()
        in_kolkata = datetime.fromisoformat(start).astimezone(KOLKATA)
        chosen = page.inner_text("#chosen-time")
        assert f"{in_kolkata:%H:%M} (Asia/Kolkata)" in chosen, (chosen, start)
    assert not page.js_errors


def next_fall_back(zone: ZoneInfo, within_days: int) -> date:
    """The next date (from the day after tomorrow) on which ``zone``'s clocks go back."""
    day = datetime.now(zone).date() + timedelta(days=2)
    for _ in range(within_days):
        early = datetime.combine(day, time(0, 30), tzinfo=zone).utcoffset()
        late = datetime.combine(day, time(23, 30), tzinfo=zone).utcoffset()
        if late < early:
            return day
        day += timedelta(days=1)
    raise AssertionError("no fall-back transition ahead")


def test_the_fall_back_night_tells_the_two_0200_buttons_apart(page, live_server):
    """The night Europe/Berlin goes back from CEST to CET (last Sunday of October) the wall times
    02:00-02:59 happen twice. The API offers both instants (…T02:00+02:00 and …T02:00+01:00), but the page
    labelled a time by the ISO string's wall clock only (``timeLabel`` in book.js): the prospect saw
    "02:00, 02:30, 02:00, 02:30" with identical aria-labels and "Sunday 31 October, 02:00 (Europe/Berlin)"
    on the confirm step — no way to tell which 02:00 they are booking."""
    rep = make_rep("Una Utc", tz="UTC", hours=(0, 23), days=range(7))
    make_meeting_type(make_pool("first_available", [rep]), slug="dst", horizon_days=365)
    day = next_fall_back(BERLIN, 360)
    page.goto(f"{live_server.url}/book/dst?date={day.isoformat()}&timezone=Europe/Berlin")
    page.locator("#times button.time").first.wait_for()
    buttons = page.eval_on_selector_all(
        "#times button.time",
        "bs => bs.map(b => [b.textContent, b.getAttribute('aria-label'), b.dataset.start])",
    )
    offsets = {start[19:] for _, _, start in buttons}
    assert len(offsets) == 2, buttons  # both CEST and CET starts are offered that day
    labels = [label for label, _, _ in buttons]
    aria = [label for _, label, _ in buttons]
    assert len(set(labels)) == len(labels), f"duplicate time buttons: {labels}"
    assert len(set(aria)) == len(aria), f"duplicate accessible names: {aria}"
    assert not page.js_errors


@pytest.mark.parametrize(("zone", "offsets"), [("Etc/GMT-14", ["+14:00"]), ("EST5EDT", ["-05:00", "-04:00"])])
def test_a_zone_named_by_its_posix_offset_shows_its_utc_offset(page, live_server, zone, offsets):
    """A prospect in a zone the page names as ``Etc/GMT-14`` (Line Islands time, fourteen hours AHEAD of UTC:
    POSIX names carry the opposite sign) read "(Etc/GMT-14)" on the confirm step and took the time for UTC-14.
    The label names the offset of any zone named with a number, as e-mails do: "UTC+14:00"."""
    meeting()
    page.goto(f"{live_server.url}/book/e2e?timezone={zone}")
    open_first_day(page)
    first = page.locator("#times button.time").first
    start = first.get_attribute("data-start")
    assert start[-6:] in offsets, start  # the API speaks the zone's real offset
    first.click()
    chosen = page.locator("#chosen-time").text_content()
    assert f"({zone}, UTC{start[-6:]})" in chosen, chosen
    assert not page.js_errors


def test_a_time_the_two_hour_fall_back_repeats_names_its_offset_when_chosen(page, live_server):
    """Antarctica/Troll goes back two hours on the last Sunday of October (03:00 +02:00 → 01:00 +00:00): every
    time from 01:00 to 02:59 happens twice. The day's buttons told the two 02:00s apart, but the confirm step
    read "…, 02:00 (Antarctica/Troll)" for either: ``ambiguous`` (book.js) looked for the same wall time only
    30 and 60 minutes away."""
    rep = make_rep("Una Utc", tz="UTC", hours=(0, 0), days=range(7))
    make_meeting_type(make_pool("first_available", [rep]), slug="troll", horizon_days=365)
    day = next_fall_back(ZoneInfo("Antarctica/Troll"), 366)
    page.goto(f"{live_server.url}/book/troll?date={day.isoformat()}&timezone=Antarctica/Troll")
    page.locator("#times button.time").first.wait_for()
    first = page.locator(f"#times button.time[data-start='{day.isoformat()}T02:00:00+02:00']")
    assert first.count() == 1, page.inner_text("#times")
    assert "UTC+02:00" in first.text_content()  # its button names its offset
    first.click()
    chosen = page.locator("#chosen-time").text_content()
    assert "UTC+02:00" in chosen, f"the first of the two 02:00s, chosen: {chosen!r}"
    assert not page.js_errors


# --- start links


def test_start_link_from_last_month_offers_the_nearest_free_times(page, live_server):
    """An email-snippet link clicked a few weeks late (its start is in the previous month): the page opens
    that past month, which it never asks the server about (``fetchMonth`` answers [] for a past month),
    and says "The time you chose is no longer available. Please pick another time." with no times at all,
    on an empty November whose "previous" button is disabled. docs/booking-page.md promises "no longer
    available" *and the 5 nearest others as buttons*; the prospect has to find the next month by hand."""
    meeting()
    first_of_month = datetime.now(BERLIN).date().replace(day=1)
    old = datetime.combine(first_of_month - timedelta(days=10), time(10, 0), tzinfo=BERLIN)
    page.goto(f"{live_server.url}/book/e2e?start={q(old.isoformat())}&name=Pat&email=pat@example.org")
    page.locator("#message", has_text="no longer available").wait_for()
    settled(page)
    offered = page.locator("#alternatives button").count()
    free_days = page.locator("#calendar-body button.day.free").count()
    assert offered > 0, (
        page.inner_text("#message"),
        page.inner_text("#month-label"),
        page.inner_text("#calendar-status"),
        free_days,
    )
    assert not page.js_errors


# --- routing rules on the booking page


def test_routing_rules_apply_on_a_meeting_type_without_questions(page, live_server, settings):
    """A meeting type without questions but with a routing rule (``utm.utm_source equals partner`` → the
    partner team; territories by ``timezone``/``country`` and account owners by ``email_domain`` are the
    same) never has its rules applied by the booking page: ``routeIfNeeded`` returns at once when there are
    no questions, so no route token is asked for and the prospect from the partner campaign is shown and
    booked with the default team. Nothing in docs/routing-rules.md ties rules to questions."""
    settings.BOOKING_RATE_LIMIT = ""
    default = make_pool("first_available", [free_all_day("Dora Default")])
    partner = make_pool("first_available", [free_all_day("Paul Partner")])
    meeting_type = make_meeting_type(default, slug="intro", questions=[])
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=10,
        name="Partner campaign",
        conditions={"all": [{"field": "utm.utm_source", "op": "equals", "value": "partner"}]},
        pool=partner,
    )
    page.goto(f"{live_server.url}/book/intro?utm_source=partner&name=Pat&email=pat@acme.io")
    open_first_day(page)
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    page.click("#submit")
    page.locator("#confirmation-heading").wait_for()
    booking = Booking.objects.get()
    assert booking.utm == {"utm_source": "partner"}
    assert host_name(booking) == "Paul Partner", "the partner rule was never applied"
    assert not page.js_errors


def test_switching_the_time_zone_after_routing_routes_again(page, live_server, settings):
    """Territory routing by ``timezone`` (docs/routing-rules.md: ``starts_with "Europe/"``). The route is
    asked for on "Continue" with the detected zone (Europe/Berlin) → the EMEA team. On the picker the
    prospect corrects the zone to America/New_York and books: the page re-routes only when name, email,
    answers or utm changed (the zone is in the route's payload but not in ``routeIfNeeded``'s key), so
    the New York prospect, stored with ``prospect_timezone=America/New_York``, is booked with the EMEA
    rep by a rule their booking contradicts."""
    settings.BOOKING_RATE_LIMIT = ""
    emea = make_pool("first_available", [free_all_day("Eve Emea")])
    americas = make_pool("first_available", [free_all_day("Al Americas")])
    questions = [{"key": "size", "label": "Company size", "type": "select", "options": ["1-10", "11-50"]}]
    meeting_type = make_meeting_type(americas, slug="terr", questions=questions)
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=10,
        name="EMEA territory",
        conditions={"all": [{"field": "timezone", "op": "starts_with", "value": "Europe/"}]},
        pool=emea,
    )
    RoutingRule.objects.create(meeting_type=meeting_type, order=99, name="Everyone else", pool=americas)
    page.goto(f"{live_server.url}/book/terr?name=Pat&email=pat@acme.io")
    page.select_option("#q-size", "11-50")
    page.click("#about-continue")
    page.locator("#calendar-body button.day.free").first.wait_for()
    page.fill("#zone", "America/New_York")
    page.press("#zone", "Enter")
    settled(page)
    open_first_day(page)
    page.locator("#times button.time").first.click()
    page.locator("#step-confirm").wait_for()
    page.click("#submit")
    page.locator("#confirmation-heading, #message:visible").first.wait_for()
    booking = Booking.objects.get()
    assert booking.prospect_timezone == "America/New_York"
    assert host_name(booking) == "Al Americas", "routed by the zone the prospect replaced"
    assert not page.js_errors


# --- the taken link's notice in the page's zone


def test_taken_link_notice_names_the_right_time_when_the_page_zone_is_not_the_browsers(page, live_server):
    """A prospect in Berlin opens an e-mail link for 03:00 New York time (``?timezone=America/New_York``,
    or after switching the zone in the picker) and the time has been taken meanwhile. ``showAlternatives``
    converts the link to the page's wall clock ("…T03:00", no offset) and hands that to ``chosenLabel``,
    which since 92b6feb converts again: ``Date.parse`` reads the offset-less string in the *browser's* zone
    (03:00 read as Berlin time) and the notice says "The time you chose (Monday …, 21:00
    (America/New_York)) is no longer available" for a link to Tuesday 03:00 — six hours and a day off.
    Before 92b6feb ``chosenLabel`` only sliced the string and the notice was right."""
    from tests.e2e.e2e_helpers import book_directly, meeting

    meeting_type = meeting()
    new_york = ZoneInfo("America/New_York")
    page.goto(f"{live_server.url}/book/e2e?timezone=America/New_York")
    page.locator("#calendar-body button.day.free").first.click()
    page.locator("#times button.time").first.wait_for()
    starts = page.eval_on_selector_all("#times button.time", "bs => bs.map(b => b.dataset.start)")
    wanted = starts[2]
    book_directly(meeting_type, wanted)
    link = wanted.replace("+", "%2B")
    page.goto(
        f"{live_server.url}/book/e2e?timezone=America/New_York&start={link}&name=Pat&email=p@example.org"
    )
    page.locator("#message", has_text="no longer available").wait_for()
    text = page.inner_text("#message")
    local = datetime.fromisoformat(wanted).astimezone(new_york)
    assert f"{local:%H:%M} (America/New_York" in text, text
