"""The times people read in Baton's messages and calendar files: the e-mails of a
reschedule, a prospect or host in a fixed-offset ``Etc/GMT±N`` zone, and the manage page's ``.ics``
download. Each expectation is computed by hand:

* Tuesday 24 March 2026 lies in the weeks US and EU summer time differ (New York on EDT since 8 March,
  Berlin on CET until 29 March): 14:00 UTC is 10:00 in New York and 15:00 in Berlin. On Tuesday 31 March
  both are on summer time: 14:00 UTC is 10:00 in New York and 16:00 in Berlin.
* ``Etc/GMT-14`` is UTC+14 (POSIX signs are inverted): 09:00 UTC is 23:00 there. ``Etc/GMT+2`` is UTC−2:
  09:00 UTC is 07:00 there.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from icalendar import Calendar

from booking.services import booking_create, booking_reschedule
from tests.booking.booking_factories import START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
PROSPECT = "pat@example.org"
OLD = dt.datetime(2026, 3, 24, 14, tzinfo=dt.UTC)  # 10:00 EDT in New York, 15:00 CET in Berlin
NEW = dt.datetime(2026, 3, 31, 14, tzinfo=dt.UTC)  # 10:00 EDT in New York, 16:00 CEST in Berlin


def book(meeting_type, capture, *, start=START, tz: str = "Europe/Berlin") -> dict:
    with capture(execute=True):
        return booking_create(
            meeting_type=meeting_type, start=start, name="Pat Prospect", email=PROSPECT, timezone=tz
        ).body


@pytest.fixture
def moved(mailoutbox, django_capture_on_commit_callbacks):
    """Pat (New York) books Ana (Berlin) on Tue 24 March, 14:00 UTC, and moves it to Tue 31 March, 14:00
    UTC (Ana keeps it). Returns (Pat's "Updated" e-mail, Ana's "Updated" e-mail)."""
    ana = make_rep("Ana", tz="Europe/Berlin")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    created = book(meeting_type, django_capture_on_commit_callbacks, start=OLD, tz="America/New_York")
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reschedule(token=created["manage_token"], start=NEW)
    (to_pat,) = [m for m in mailoutbox[sent:] if m.to == [PROSPECT]]
    (to_ana,) = [m for m in mailoutbox[sent:] if m.to == [ana.email]]
    assert to_pat.subject == "Updated: Intro call" and to_ana.subject.startswith("Updated: ")
    return to_pat, to_ana


def test_the_prospects_reschedule_email_tells_the_old_time_as_well_as_the_new_one(moved):
    """Pat's "Updated" e-mail names only the new time (in New York: 10:00 on the 31st); the time the
    meeting was moved from (10:00 on the 24th, New York's EDT while Berlin was still on CET) appears
    nowhere, so Pat cannot tell from the e-mail what changed. (A host released by the move is told the time
    they held; the prospect and a host who keeps the meeting are not.)"""
    to_pat, _ = moved
    assert "Tuesday 31 March 2026, 10:00–10:30 (America/New_York)" in to_pat.body  # the new time: right
    assert "Tuesday 24 March 2026, 10:00–10:30" in to_pat.body, to_pat.body  # the old one: missing


def test_a_hosts_reschedule_email_tells_the_old_time_in_the_hosts_zone(moved):
    """Ana (Berlin) keeps the meeting: her "Updated" e-mail says 16:00 on the 31st (CEST) but not that
    it was 15:00 on the 24th (CET): a rep reading the e-mail cannot tell the meeting moved, nor from when."""
    _, to_ana = moved
    assert "Tuesday 31 March 2026, 16:00–16:30 (Europe/Berlin)" in to_ana.body  # the new time: right
    assert "Tuesday 24 March 2026, 15:00–15:30" in to_ana.body, to_ana.body  # the old one: missing


def when_line(body: str) -> str:
    (line,) = [x for x in body.splitlines() if re.match(r"(Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day ", x)]
    return line


def test_an_etc_gmt_zone_is_told_with_its_real_utc_offset(mailoutbox, django_capture_on_commit_callbacks):
    """A prospect whose zone is ``Etc/GMT-14`` (UTC+14; a browser on a fixed-offset system reports such
    names) and a rep in ``Etc/GMT+2`` (UTC−2; Windows' "UTC-02" zone). The e-mails give the right wall
    times (23:00 for Pat, 07:00 for Ana) but name them only by the zone's POSIX name, whose sign is the
    opposite of its offset: "23:00 (Etc/GMT-14)" reads as GMT−14 (a day and 4 hours off), "07:00
    (Etc/GMT+2)" as GMT+2 (4 hours off). The real offset (+14 / −02, the zone's own abbreviation, as the
    e-mail snippet shows it) is said nowhere."""
    ana = make_rep("Ana", tz="Etc/GMT+2", hours=(6, 20))
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    book(meeting_type, django_capture_on_commit_callbacks, start=START, tz="Etc/GMT-14")
    (to_pat,) = [m for m in mailoutbox if m.to == [PROSPECT]]
    (to_ana,) = [m for m in mailoutbox if m.to == [ana.email]]
    pat_line, ana_line = when_line(to_pat.body), when_line(to_ana.body)
    assert pat_line.startswith("Tuesday 3 March 2026, 23:00–23:30")  # the wall time is right
    assert ana_line.startswith("Tuesday 3 March 2026, 07:00–07:30")
    assert re.search(r"\+14\b", pat_line), pat_line  # "(Etc/GMT-14)" alone: reads as UTC−14
    assert re.search(r"[-−]0?2\b", ana_line), ana_line  # "(Etc/GMT+2)" alone: reads as UTC+2


def test_the_manage_pages_publish_download_carries_no_attendees(client, django_capture_on_commit_callbacks):
    """``GET /manage/<token>/ics`` is ``METHOD:PUBLISH`` (docs/booking-page.md), and RFC 5546 §3.2.1 allows
    no ATTENDEE in a PUBLISH (presence "0"; a published event has no one to reply to it). The download
    lists Pat as an ATTENDEE with ``RSVP=TRUE;PARTSTAT=NEEDS-ACTION``: a strict iTIP validator refuses the
    file, and clients that honour the attendee list show Pat an invitation to answer (to the lead host,
    the ORGANIZER) on a file they only meant to add to their calendar."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    created = book(meeting_type, django_capture_on_commit_callbacks)
    response = client.get(f"/manage/{created['manage_token']}/ics")
    assert response.status_code == 200
    cal = Calendar.from_ical(response.content)
    event = cal.walk("VEVENT")[0]
    assert event.decoded("DTSTART") == START  # the time is right
    attendees = event.get("ATTENDEE")
    assert not (str(cal.get("METHOD")) == "PUBLISH" and attendees), (cal.get("METHOD"), attendees)
