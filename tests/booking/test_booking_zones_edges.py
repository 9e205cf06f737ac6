"""Time zones and DST at the edges of the product (not the slot grid core): the slots API's answer, the
email snippet, pages and admin screens under a ``TIME_ZONE`` other than UTC, and the
country a prospect's time zone stands for.

Each test failed before its fix; the docstring says what a prospect, rep or admin saw.
Reps in Asia/Riyadh work Sunday to Thursday, so their Sunday morning is the small hours of a Sunday in
New York: the night the US clocks change.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model

from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

NY = "America/New_York"
SUN_TO_THU = (6, 0, 1, 2, 3)


def riyadh_meeting_type(slug: str, *, minutes: int = 30):
    """A Riyadh rep working Sunday–Thursday 08:00–12:00 (05:00–09:00 UTC) and a meeting type on her."""
    rep = make_rep("Rana", tz="Asia/Riyadh", hours=(8, 12), days=SUN_TO_THU)
    return make_meeting_type(
        make_pool("round_robin", [rep]), slug=slug, duration_minutes=minutes, slot_interval_minutes=30
    )


# --- slots API: the end of a slot on the night the clocks go back


def test_slots_api_end_of_a_slot_in_the_repeated_hour_is_an_hour_late(api):
    """New York goes back from EDT to EST at 02:00 on Sunday 1 November 2026, so 01:00–02:00 happens
    twice. A Riyadh rep is free on that Sunday 05:00–09:00 UTC; a New York prospect asks for the slots. The
    30-minute slot starting at the first 01:30 (EDT, 05:30 UTC) comes back with
    ``end: 2026-11-01T02:00:00-05:00`` = 07:00 UTC: a 90-minute slot, ending an hour after the meeting
    would; and the slot at the second 01:00 (EST, 06:00 UTC) ends at ``01:30:00-04:00`` = 05:30 UTC, before
    it starts. The end is ``start + duration`` in wall-clock arithmetic on an aware local datetime
    (booking/api/views.py ``_slots``), not in UTC. Expected: 01:00 EST (06:00 UTC) and 01:30 EST. The
    reschedule-slots endpoint shares ``_slots``."""
    riyadh_meeting_type("riyadh")
    with time_machine.travel(dt.datetime(2026, 10, 29, 12, 0, tzinfo=dt.UTC), tick=False):
        response = api.get(
            "/api/v1/meeting-types/riyadh/slots", {"timezone": NY, "start": "2026-11-01", "end": "2026-11-01"}
        )
    assert response.status_code == 200, response.json()
    slots = response.json()["slots"]
    assert slots, "the rep's Sunday morning should be offered"
    wrong = []
    for slot in slots:
        start, end = dt.datetime.fromisoformat(slot["start"]), dt.datetime.fromisoformat(slot["end"])
        if end.astimezone(dt.UTC) - start.astimezone(dt.UTC) != dt.timedelta(minutes=30):
            wrong.append(slot)
    assert not wrong, f"slots whose end is not start + 30 minutes: {wrong}"


# --- email snippet: a day holding the change of clocks


def test_a_snippet_day_holding_the_change_of_clocks_shows_each_start_under_its_abbreviation(client, settings):
    """The email snippet in New York time for Sunday 1 November 2026 (clocks go back at 02:00). The Riyadh
    rep's Sunday morning is 01:00 EDT, 01:30 EDT, then 01:00 EST, 01:30 EST, 02:00 EST … The snippet gives
    each day ONE abbreviation, its first start's (booking/snippet.py ``snippet_context``: ``day_starts[0]
    .tzname()``), so the prospect reads "Sun 1 Nov (EDT)" followed by two buttons "01:00" and two "01:30"
    and every later time claimed as EDT, an hour off. The module promises that no reader converting a time
    with the shown abbreviation is an hour off; here six of the eight starts are."""
    settings.BASE_URL = "https://book.example.com"
    riyadh_meeting_type("riyadh-snippet")
    params = {"days": 3, "count": 20, "timezone": NY, "format": "text"}
    with time_machine.travel(dt.datetime(2026, 10, 30, 12, 0, tzinfo=dt.UTC), tick=False):
        text = client.get("/book/riyadh-snippet/email-snippet", params).content.decode()
    lines = text.splitlines()
    shown = []  # (abbreviation in force per the text, time label, the instant the link books)
    abbr = None
    for line in lines:
        head = re.match(r"^\S.*\((E[SD]T)\)$", line)
        if head and not line.startswith("Intro"):
            abbr = head.group(1)
            continue
        row = re.match(r"^\s+(\d\d:\d\d)\s+(\S+)$", line)
        if row:
            start = re.search(r"start=([^&]+)", row.group(2)).group(1).replace("%3A", ":").replace("%2B", "+")
            shown.append((abbr, row.group(1), dt.datetime.fromisoformat(start)))
    assert shown, text
    off = [(a, label, s.isoformat()) for a, label, s in shown if s.astimezone(ZoneInfo(NY)).tzname() != a]
    assert not off, f"starts shown under an abbreviation they are not in: {off}\n{text}"
    assert {a for a, _, _ in shown} == {"EDT", "EST"}


# --- TIME_ZONE other than UTC: times labelled "UTC" shown in the server's zone


@pytest.fixture
def new_york_server(settings):
    settings.TIME_ZONE = NY  # README: TIME_ZONE is the admin's display zone; storage stays UTC
    return settings


def test_dashboard_today_board_column_says_utc_but_shows_server_time(client, new_york_server):
    """With ``TIME_ZONE=America/New_York`` the insights dashboard's "Today" table has a column headed
    "start (UTC)". A meeting at 15:00 UTC is listed as "10:00": the template's ``|date:"H:i"``
    (templates/insights/dashboard.html:48) converts to the current zone. A manager reading it calls the
    rep five hours early (the reassign page uses ``|utc`` for exactly this)."""
    rep = make_rep("Ana", tz="Europe/Berlin")
    meeting_type = make_meeting_type(make_pool("first_available", [rep]), slug="dash")
    bulk_bookings(meeting_type, [rep], [dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)])
    user = get_user_model().objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    query = {"pool": meeting_type.pool.slug, "start": "2026-03-01 00:00", "end": "2026-03-03 00:00"}
    with time_machine.travel(dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC), tick=False):
        page = client.get("/insights/", query).content.decode()
    board = page[page.index("<th>start (UTC)</th>") :]
    row = re.search(r"<tr><td>Ana</td><td>([^<]*)</td><td>Intro call</td>", board)
    assert row, page
    assert row.group(1) == "15:00", f"the 15:00 UTC meeting is shown as {row.group(1)} under 'start (UTC)'"


def test_simulator_heading_says_utc_but_shows_server_time(client, new_york_server):
    """With ``TIME_ZONE=America/New_York`` the simulator reads its start as UTC (the form says "UTC, e.g.
    2026-03-02 00:00") but the result heading prints it with ``|date`` and the word "UTC"
    (templates/insights/simulator.html:17): "2026-03-01 19:00 → … UTC" for a run the admin started at
    2026-03-02 00:00 UTC."""
    rep = make_rep("Ana", tz="Europe/Berlin")
    meeting_type = make_meeting_type(make_pool("first_available", [rep]), slug="sim")
    user = get_user_model().objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    data = {
        "pool": meeting_type.pool.slug,
        "mode": "synthetic",
        "start": "2026-03-02 00:00",
        "rate": "1",
        "hours": "2",
        "seed": "1",
    }
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), tick=False):
        response = client.post("/insights/simulator/", data)
    assert response.status_code == 200, response.content.decode()[:2000]
    heading = re.search(r"<h2>[^<]*UTC\)</h2>", response.content.decode())
    assert heading, response.content.decode()[:3000]
    assert "(2026-03-02 00:00 → 2026-03-02 02:00 UTC)" in heading.group(0), heading.group(0)


def test_calendar_page_last_sync_says_utc_but_shows_server_time(client, new_york_server):
    """With ``TIME_ZONE=America/New_York`` a rep's "Your calendars" page shows the last successful sync as
    "2026-03-02 02:00 UTC" for a sync at 07:00 UTC (templates/calendars/connections.html:23: ``|date``
    converts to the server's zone, then "UTC" is appended). The rep thinks their calendar has not synced
    for five more hours than it has."""
    from calendars.models import CalendarConnection
    from routing.models import Rep

    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = Rep.objects.create(name="Dana", email="dana@example.com", timezone="Europe/Berlin", user=user)
    CalendarConnection.objects.create(
        rep=rep,
        provider="ics",
        account_email="feeds.example.com",
        secret_blob="x",
        last_success_at=dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC),
    )
    client.force_login(user)
    page = client.get("/calendars/").content.decode()
    assert "2026-03-02 07:00 UTC" in page, re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page)


def test_admin_time_off_saved_message_calls_server_time_utc(client, new_york_server):
    """With ``TIME_ZONE=America/New_York`` an admin adds time off from 09:00 to 17:00 (the admin's
    fields are in the server's zone: stored as 13:00–21:00 UTC, EDT). The confirmation says "The time off
    “Ana off 2026-03-10 09:00 → 2026-03-10 17:00 UTC” was added successfully": ``TimeOff.__str__``
    (calendars/models.py:88) formats the datetime as the form left it (New York) and appends "UTC". Either
    the admin believes the entry was taken as UTC and "corrects" it by five hours, or the label is simply
    wrong. (``BusyInterval.__str__`` does the same for manual busy rows.)"""
    from calendars.models import TimeOff

    rep = make_rep("Ana", tz="Europe/Berlin")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        "/admin/calendars/timeoff/add/",
        {
            "rep": rep.pk,
            "start_0": "2026-03-10",
            "start_1": "09:00:00",
            "end_0": "2026-03-10",
            "end_1": "17:00:00",
            "reason": "dentist",
        },
        follow=True,
    )
    off = TimeOff.objects.get(rep=rep)
    assert off.start == dt.datetime(2026, 3, 10, 13, 0, tzinfo=dt.UTC)  # the admin's 09:00 New York (EDT)
    messages = [str(m) for m in response.context["messages"]]
    assert messages, response.content.decode()[:2000]
    stored = f"{off.start.astimezone(dt.UTC):%Y-%m-%d %H:%M}"  # 2026-03-10 13:00
    assert all("UTC" not in m or stored in m for m in messages), (stored, messages)


# --- routing rules: the country of a browser's time zone name


@pytest.mark.parametrize(
    ("zone", "country"),
    [
        ("Pacific/Truk", "FM"),  # Chuuk, Micronesia: the name browsers (ICU/CLDR) report
        ("Pacific/Ponape", "FM"),  # Pohnpei, Micronesia
        ("America/Coral_Harbour", "CA"),  # Atikokan, Ontario
    ],
)
def test_a_legacy_zone_name_keeps_its_own_country(zone, country):
    """Chrome and other ICU-based browsers report CLDR's zone names, e.g. ``Pacific/Truk`` in Chuuk
    (Micronesia), ``Pacific/Ponape`` in Pohnpei (Micronesia) and ``America/Coral_Harbour`` in Atikokan
    (Canada). A lead without a country answer gets the time zone's country (leads/services.py
    ``lead_facts``), taken for a link from the zone it points to (leads/geo.py ``_zone_countries``). Since
    tzdata 2022 merged zones across borders those links point to Pacific/Port_Moresby (PG),
    Pacific/Guadalcanal (SB) and America/Panama (PA): a Micronesian prospect is routed by territory rules
    as Papua New Guinea or the Solomon Islands, a Canadian one as Panamanian."""
    from leads.services import lead_facts

    facts = lead_facts(email="pat@example.org", timezone=zone, answers={}, utm={})
    assert facts.country == country, f"{zone}: {facts.country}"
