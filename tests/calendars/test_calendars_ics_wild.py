"""ICS feed shapes seen in the wild: one broken event or header (it made the whole feed unreadable),
Outlook's ``tzone://Microsoft/Utc`` zone, Google exports that keep the rep's declined meetings, and floating
series whose EXDATE is written in UTC (found by a hunting helper; each test failed before its fix)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from calendars.providers.ics import busy_events, parse

UTC = dt.UTC
MARCH = (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 30, tzinfo=UTC))
BERLIN = ZoneInfo("Europe/Berlin")


def z(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def feed(*events: str, head: str = "") -> bytes:
    body = "".join(f"BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\n{e}\r\nEND:VEVENT\r\n" for e in events)
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hunt//EN\r\n{head}{body}END:VCALENDAR\r\n").encode()


ONE_OFF = "UID:one-off@example.com\r\nDTSTART:20260310T100000Z\r\nDTEND:20260310T110000Z"


def spans(data: bytes, zone: ZoneInfo = BERLIN, skipped: list | None = None):
    return sorted((e.start, e.end) for e in busy_events(parse(data), MARCH, zone, skipped=skipped))


@pytest.mark.parametrize(
    "series",
    [
        # a weekly 1:1 whose DTSTART value is cut short (seconds missing)
        "UID:weekly@example.com\r\nDTSTART:20260305T1400\r\nDTEND:20260305T150000Z\r\nRRULE:FREQ=WEEKLY",
        # a series with an extra date that cannot be read
        "UID:weekly@example.com\r\nDTSTART:20260305T140000Z\r\nDTEND:20260305T150000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\nRDATE:2026031",
    ],
    ids=["broken-dtstart", "broken-rdate"],
)
def test_a_repeating_event_with_an_unreadable_date_does_not_fail_the_whole_feed(
    series, make_rep, ics_connection
):
    """docs/calendars.md (failure table): "ICS feed with a repeating event recurring-ical-events cannot
    read … the sync succeeds without that series and says so". A series whose DTSTART or RDATE value is
    broken is such an event (the library leaves it out with ``skip_bad_series``, and a one-off event with a
    broken DTSTART is already left out with that warning), but the cost check (``ics_cost.expansion_cost``)
    reads ``.dt`` / ``.dts`` of the broken property first and icalendar's ``BrokenCalendarProperty`` escapes:
    the whole sync fails as "The calendar's data could not be read", nothing of the feed counts, and after
    CALENDAR_STALENESS_MINUTES the rep disappears from every booking page over one bad line."""
    from calendars.models import Calendar
    from calendars.services.sync import calendar_sync

    connection = ics_connection(make_rep(timezone="UTC"), feed(ONE_OFF, series))
    calendar = Calendar.objects.get(connection=connection)
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=UTC)):
        assert calendar_sync(calendar_id=calendar.pk) == "full"
        rows = list(connection.rep.busy_intervals.values_list("start", "end"))
        assert rows == [(z(2026, 3, 10, 10), z(2026, 3, 10, 11))]  # the one-off meeting still counts
        calendar.refresh_from_db()
        assert calendar.last_error.startswith("Synced, but repeating events in this feed that cannot be read")


def test_an_event_without_dtstart_does_not_make_the_whole_feed_unreadable():
    """A VEVENT without DTSTART (a draft or "someday" item some exporters write, or a DTSTART line the
    parser had to drop) has no time to block. ``ics._busy`` is written to skip it (``if dtstart is None:
    return None``) and a one-off event with an unreadable DTSTART is skipped, but recurring-ical-events
    raises ``KeyError('DTSTART')`` first and ``busy_events`` turns that into ``InvalidFeed`` for the whole
    feed: every real meeting in it stops counting and the rep is withheld once the calendar goes stale."""
    undated = "UID:someday@example.com\r\nSUMMARY:Someday: clean the inbox"
    assert spans(feed(ONE_OFF, undated)) == [(z(2026, 3, 10, 10), z(2026, 3, 10, 11))]


def test_outlooks_tzone_microsoft_utc_is_utc_not_the_reps_zone():
    """Outlook / Microsoft 365 publish Teams meetings as ``DTSTART;TZID="tzone://Microsoft/Utc"`` with no
    VTIMEZONE (python-recurring-ical-events issue #126): the times are UTC. Baton reads the unknown TZID as a
    floating time in the rep's zone, so for a Berlin rep a 10:00–11:00 UTC meeting (11:00–12:00 in Berlin)
    blocks 09:00–10:00 UTC instead: the hour the rep is really in a meeting is offered to prospects and
    booked (double-booking), and a free hour is withheld."""
    teams = (
        "UID:teams@example.com\r\n"
        'DTSTART;TZID="tzone://Microsoft/Utc":20260311T100000\r\n'
        'DTEND;TZID="tzone://Microsoft/Utc":20260311T110000'
    )
    assert spans(feed(teams)) == [(z(2026, 3, 11, 10), z(2026, 3, 11, 11))]


@pytest.mark.parametrize("zone_header", ["W. Europe Standard Time", ""], ids=["windows-id", "empty"])
def test_an_unknown_x_wr_timezone_does_not_make_the_whole_feed_unreadable(zone_header):
    """X-WR-TIMEZONE is a non-standard calendar-wide hint. Feeds exported from Exchange/Outlook tools carry
    a Windows zone id there (``X-WR-TIMEZONE:W. Europe Standard Time``) and some generators leave it empty.
    x-wr-timezone raises ``ZoneInfoNotFoundError`` / ``ValueError`` for these, and ``busy_events`` refuses
    the whole feed ("cannot be expanded"): none of the rep's meetings count and the rep is withheld after
    the staleness bound, though every event carries a full UTC time. The hint should be mapped (icalendar
    maps Windows ids in TZID already) or ignored, not fail the feed."""
    data = feed(ONE_OFF, head=f"X-WR-TIMEZONE:{zone_header}\r\n")
    assert spans(data) == [(z(2026, 3, 10, 10), z(2026, 3, 10, 11))]


def test_meetings_the_rep_declined_do_not_block(make_rep, ics_connection):
    """Google's secret iCal address exports meetings the owner declined, with the owner's
    ``ATTENDEE;PARTSTAT=DECLINED`` (ical2org.py issue #36, Home Assistant PR #128900). Baton's Google and
    Microsoft syncs do not count declined-by-the-rep events (docs/calendars.md); read from the same Google
    calendar's ICS address, the declined meeting blocks the rep's time and the slot is never offered — the
    same calendar gives different availability depending on how it was connected."""
    from calendars.models import Calendar
    from calendars.services.sync import calendar_sync

    rep = make_rep(timezone="UTC")
    declined = (
        "UID:declined@google.com\r\nDTSTART:20260311T140000Z\r\nDTEND:20260311T150000Z\r\n"
        "ORGANIZER;CN=Vendor:mailto:sales@vendor.example\r\n"
        f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=DECLINED;CN={rep.email}:mailto:{rep.email}\r\n"
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:sales@vendor.example"
    )
    accepted = declined.replace("declined@", "accepted@").replace("20260311T14", "20260312T14")
    accepted = accepted.replace("20260311T15", "20260312T15")
    accepted = accepted.replace("PARTSTAT=DECLINED", "PARTSTAT=ACCEPTED")
    connection = ics_connection(rep, feed(declined, accepted))
    calendar = Calendar.objects.get(connection=connection)
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=UTC)):
        assert calendar_sync(calendar_id=calendar.pk) == "full"
    rows = sorted(rep.busy_intervals.values_list("start", "end"))
    assert rows == [(z(2026, 3, 12, 14), z(2026, 3, 12, 15))]


def test_a_floating_series_with_a_utc_exdate_stays_in_the_reps_zone():
    """docs/calendars.md: "Floating times and dates are read in the rep's zone". A floating weekly series
    (10:00 wall clock) whose cancelled week is written as a UTC EXDATE (09:00Z = 10:00 in Berlin) comes out
    of recurring-ical-events as UTC times: every instance blocks 10:00–11:00 UTC (11:00–12:00 in Berlin)
    instead of 09:00–10:00 UTC, and the cancelled week still blocks. The rep's real 10:00 meeting is offered
    and booked each week (double-booking)."""
    series = (
        "UID:floating-weekly@example.com\r\nDTSTART:20260302T100000\r\nDTEND:20260302T110000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE:20260309T090000Z"
    )
    assert spans(feed(series)) == [
        (z(2026, 3, 2, 9), z(2026, 3, 2, 10)),
        (z(2026, 3, 16, 9), z(2026, 3, 16, 10)),
    ]
