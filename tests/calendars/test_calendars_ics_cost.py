"""ICS feeds whose rules would take minutes to expand (FREQ=SECONDLY, hourly since 1900, INTERVAL=0) are
refused before recurring-ical-events runs; the bounds used for that are upper bounds of what the library
really expands; a busy but ordinary calendar passes with room to spare; and a sync of a refused feed fails
with the reason, keeping the busy times it had."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import time_machine
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from calendars.errors import InvalidFeed
from calendars.models import BusyInterval, Calendar
from calendars.providers.ics import busy_events, parse
from calendars.providers.ics_cost import expansion_cost
from calendars.services.sync import calendar_sync

UTC = dt.UTC
WINDOW = (dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 30, tzinfo=UTC))  # 60 days
ONE_DAY, DEC_1 = dt.timedelta(days=1), dt.date(2026, 12, 1)


def wall(*args) -> dt.datetime:
    """A wall-clock time in the rep's zone: the frame the expansion is asked in."""
    return dt.datetime(*args)  # noqa: DTZ001


def feed(*events: str) -> bytes:
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:e{i}@example.com\r\nDTSTAMP:20261201T000000Z\r\n{e}\r\nEND:VEVENT\r\n"
        for i, e in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n".encode()


def hourly(since: str = "20261201T090000Z") -> str:
    return f"DTSTART:{since}\r\nDURATION:PT30M\r\nRRULE:FREQ=HOURLY"


def test_a_feed_whose_rules_make_too_many_instances_is_refused(settings):
    settings.CALENDAR_ICS_MAX_INSTANCES = 1_000
    with pytest.raises(InvalidFeed, match=r"up to 1,\d{3} instances in the next 60 days .*1,000"):
        busy_events(parse(feed(hourly())), WINDOW, ZoneInfo("UTC"))  # 1,440 hours
    settings.CALENDAR_ICS_MAX_INSTANCES = 2_000
    assert len(busy_events(parse(feed(hourly())), WINDOW, ZoneInfo("UTC"))) == 60 * 24 - 9


def test_a_series_with_too_many_steps_before_the_window_is_refused(settings):
    settings.CALENDAR_ICS_MAX_INSTANCES = 100  # 5,000 steps: a daily series since 2000 takes ~9,900
    daily = "DTSTART:20000103T090000Z\r\nDURATION:PT30M\r\nRRULE:FREQ=DAILY"
    with pytest.raises(InvalidFeed, match="repetitions to step through"):
        busy_events(parse(feed(daily)), WINDOW, ZoneInfo("UTC"))
    settings.CALENDAR_ICS_MAX_INSTANCES = 200
    assert len(busy_events(parse(feed(daily)), WINDOW, ZoneInfo("UTC"))) == 60


@pytest.mark.timeout(30)  # the old code took minutes
def test_every_second_is_refused_at_once_with_the_default_limit():
    # recurring-ical-events took 469 s for 4.6 million instances of this in 60 days
    every_second = "DTSTART:20261207T100000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY"
    with pytest.raises(InvalidFeed, match="repeats events too often"):
        busy_events(parse(feed(every_second)), WINDOW, ZoneInfo("UTC"))


@pytest.mark.timeout(30)  # the old code never returned: dateutil steps in place
@pytest.mark.parametrize("interval", ["0", "-2"])
def test_a_rule_that_never_advances_is_refused(interval):
    rule = f"DTSTART:20261207T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;INTERVAL={interval}"
    with pytest.raises(InvalidFeed, match=f"invalid rule \\(INTERVAL={interval}\\)"):
        busy_events(parse(feed(rule)), WINDOW, ZoneInfo("UTC"))


def test_a_date_past_the_year_9999_in_utc_is_an_invalid_feed_not_a_crash():
    # floating 9999-12-31T23:59:59 in Los Angeles is 10000-01-01 in UTC (an OverflowError before)
    moved = "DTSTART:20261207T100000Z\r\nDTEND:20261207T110000Z\r\nRECURRENCE-ID:99991231T235959"
    with pytest.raises(InvalidFeed, match="beyond the year 9999"):
        busy_events(parse(feed(moved)), WINDOW, ZoneInfo("America/Los_Angeles"))


def test_a_busy_ordinary_calendar_passes_with_room_to_spare():
    events = [
        "DTSTART;TZID=Europe/Berlin:20100104T091500\r\nDURATION:PT15M\r\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        "DTSTART:20150105T140000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "DTSTART:20180126T160000Z\r\nDURATION:PT2H\r\nRRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "DTSTART:20240101T080000Z\r\nDURATION:PT30M\r\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20270601T000000Z",
        *[
            f"DTSTART;VALUE=DATE:{1960 + i % 40}{1 + i % 12:02d}{1 + i % 28:02d}\r\nRRULE:FREQ=YEARLY"
            for i in range(300)
        ],
        *[
            f"DTSTART:{DEC_1 + ONE_DAY * (i // 15):%Y%m%d}T{8 + i % 9:02d}0000Z\r\nDURATION:PT1H"
            for i in range(800)  # 800 meetings over the next 54 days
        ],
    ]
    cal = parse(feed(*events))
    cost = expansion_cost(cal, (wall(2026, 11, 30), wall(2027, 5, 31)), ZoneInfo("UTC"))
    assert cost.instances < 1_500 and cost.steps < 30_000  # limits: 20,000 and 1,000,000
    assert len(busy_events(cal, WINDOW, ZoneInfo("UTC"))) > 800


FREQS = ["MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU", "1MO", "-1FR", "2SU"]


@st.composite
def rules(draw):
    freq = draw(st.sampled_from(FREQS))
    step = st.integers(5, 30) if freq == "MINUTELY" else st.integers(1, 4)  # MINUTELY: ~0.2 ms an instance
    parts = [f"FREQ={freq}", f"INTERVAL={draw(step)}"]
    if draw(st.booleans()):
        parts.append(
            "BYDAY=" + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True)))
        )
    if draw(st.booleans()) and freq in ("MONTHLY", "YEARLY", "DAILY"):
        parts.append(
            "BYMONTHDAY="
            + ",".join(map(str, draw(st.lists(st.integers(1, 31), min_size=1, max_size=3, unique=True))))
        )
    if draw(st.booleans()) and freq in ("YEARLY", "MONTHLY"):
        parts.append(
            "BYMONTH="
            + ",".join(map(str, draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))))
        )
    if freq != "MINUTELY" and draw(st.booleans()):
        parts.append(
            "BYHOUR="
            + ",".join(map(str, draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))))
        )
    if freq not in ("MINUTELY",) and draw(st.booleans()):
        parts.append(
            "BYMINUTE="
            + ",".join(map(str, draw(st.lists(st.integers(0, 59), min_size=1, max_size=3, unique=True))))
        )
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 400))}")
    elif draw(st.booleans()):
        parts.append(f"UNTIL=2026120{draw(st.integers(1, 9))}T000000Z")
    return ";".join(parts)


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=rules(),
    start=st.datetimes(wall(2026, 11, 1), wall(2026, 12, 5)),
    minutes=st.integers(1, 3 * 24 * 60),
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "Etc/GMT+12"]),
    event_zone=st.sampled_from([None, "UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Etc/GMT+12"]),
)
def test_the_bounds_are_never_below_what_the_library_expands(rule, start, minutes, zone, event_zone):
    local = (wall(2026, 12, 1), wall(2026, 12, 4))  # a short window keeps MINUTELY cheap
    if event_zone is None:  # floating
        dtstart = f"DTSTART:{start:%Y%m%dT%H%M%S}"
    elif event_zone == "UTC":
        dtstart = f"DTSTART:{start:%Y%m%dT%H%M%S}Z"
    else:
        dtstart = f"DTSTART;TZID={event_zone}:{start:%Y%m%dT%H%M%S}"
    text = f"{dtstart}\r\nDURATION:PT{minutes}M\r\nRRULE:{rule}"
    cal = parse(feed(text))
    cost = expansion_cost(cal, local, ZoneInfo(zone))
    try:
        expanded = recurring_ical_events.of(cal, skip_bad_series=True).between(*local)
    except ValueError:  # e.g. BYMONTH=2;BYMONTHDAY=31: an empty set (busy_events says InvalidFeed)
        assume(False)
    assert len(expanded) <= cost.instances, (rule, start, len(expanded), cost)
    assert isinstance(cal, icalendar.Calendar)


@pytest.mark.timeout(60)
@pytest.mark.django_db
def test_a_sync_of_a_refused_feed_fails_with_the_reason_and_keeps_its_busy_times(
    make_rep, ics_connection, fake_ics, settings
):
    rep = make_rep(timezone="UTC")
    meeting = "DTSTART:20261208T150000Z\r\nDTEND:20261208T160000Z"
    conn = ics_connection(rep, feed(meeting))
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    with time_machine.travel(dt.datetime(2026, 12, 6, 12, tzinfo=UTC)):
        assert calendar_sync(calendar_id=cal.pk) == "full"
        (secret,) = fake_ics.feeds
        fake_ics.feeds[secret] = feed(
            meeting, "DTSTART:20261207T100000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY"
        )
        assert calendar_sync(calendar_id=cal.pk, force_full=True) == "failed"
    cal.refresh_from_db()
    assert "repeats events too often" in cal.last_error and "CALENDAR_ICS_MAX_INSTANCES" in cal.last_error
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", flat=True)) == [
        dt.datetime(2026, 12, 8, 15, tzinfo=UTC)
    ]
