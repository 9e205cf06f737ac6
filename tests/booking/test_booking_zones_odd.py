"""Time zones and DST end to end through the slots and booking API: a date a zone skipped (found by a
hunting helper; the first test failed before its fix), 23- and 25-hour days, an instant written in
another offset."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

APIA = "Pacific/Apia"
WEEKDAYS = range(5)  # Monday–Friday


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# --- a local date the zone skipped: Samoa went from 29 to 31 December 2011


def apia_meeting_type(slug: str):
    """Sina in Samoa works Monday–Friday 09:00–17:00. Samoa moved across the date line at the end of
    Thursday 29 December 2011 (-10:00 → +14:00): Friday 30 December 2011 never happened there, and the
    next day was Saturday 31 December, a day she does not work."""
    rep = make_rep("Sina", tz=APIA, hours=(9, 17), days=WEEKDAYS)
    return make_meeting_type(make_pool("first_available", [rep]), slug=slug, horizon_days=30)


def test_a_skipped_fridays_hours_are_not_offered_nor_bookable_on_the_saturday_after_it(api):
    """Sina's Friday hours of the skipped Friday 30 December are not offered, nor bookable, on Saturday 31
    December 2011, a day she does not work. (They were: ``dateutil.tz.resolve_imaginary`` "moves a gap time
    forward by the gap", and the gap is the whole day, so Friday 09:00–17:00 became Saturday 09:00–17:00:
    16 starts offered and a booking accepted on her day off.) A local date that does not exist has no
    working hours; the day
    after it keeps its own weekday's hours (none on a Saturday), so the Saturday is offered and booked like
    any other Saturday: not at all. (Pacific/Fakaofo skipped the same day.)"""
    apia_meeting_type("samoa")
    with time_machine.travel(utc(2011, 12, 20, 0, 0), tick=False):
        saturday = {"timezone": APIA, "start": "2011-12-31", "end": "2011-12-31"}
        offered = api.get("/api/v1/meeting-types/samoa/slots", saturday)
        booked = api.post(
            "/api/v1/meeting-types/samoa/bookings",
            body(start="2011-12-31T10:00:00+14:00", timezone=APIA, answers={}),
            format="json",
        )
    assert offered.status_code == 200, offered.json()
    assert offered.json()["slots"] == [], "Saturday 31 Dec 2011 is not a working day of a Monday–Friday rep"
    assert booked.status_code in (400, 409), booked.json()


def test_slots_api_counts_the_local_hours_of_a_23_and_a_25_hour_day(api):
    """A New York rep working Sundays 00:00–24:00 (an end of 00:00 is midnight ending the day). Asked in
    New York for the local date of each change of clocks, the slots API answers every 30-minute start of
    that local day and no other: 46 on Sunday 8 March 2026 (23 hours), 50 on Sunday 1 November 2026 (25
    hours: both 01:00 and both 01:30), from its 00:00 to its 23:30, each end 30 real minutes later."""
    rep = make_rep("Nia", tz="America/New_York", hours=(0, 0), days=[6])
    make_meeting_type(make_pool("first_available", [rep]), slug="sundays", horizon_days=30)
    for day, now, expected in (
        ("2026-03-08", utc(2026, 2, 28, 12, 0), 46),
        ("2026-11-01", utc(2026, 10, 20, 12, 0), 50),
    ):
        with time_machine.travel(now, tick=False):
            response = api.get(
                "/api/v1/meeting-types/sundays/slots",
                {"timezone": "America/New_York", "start": day, "end": day},
            )
        got = response.json()["slots"]
        assert len(got) == expected, (day, len(got))
        assert got[0]["start"] == f"{day}T00:00:00-05:00" if day.endswith("08") else f"{day}T00:00:00-04:00"
        assert got[-1]["start"].startswith(f"{day}T23:30:00"), got[-1]
        for slot in got:
            start, end = (dt.datetime.fromisoformat(slot[k]) for k in ("start", "end"))
            assert end - start == dt.timedelta(minutes=30), slot


def test_a_start_in_another_offset_books_and_replays_the_same_instant(api):
    """A Kathmandu rep (UTC+05:45) works 09:00–12:00 on a 60-minute grid: 03:15, 04:15, 05:15 UTC. A St
    John's prospect (UTC-03:30) sees ``2026-03-05T00:45:00-03:30``; the client books that instant written
    in Chatham's offset (+13:45), and retries with the same Idempotency-Key in UTC (``Z``): one booking,
    the retry replayed, both answers in the prospect's zone."""
    rep = make_rep("Kiran", tz="Asia/Kathmandu", hours=(9, 12), days=range(7))
    make_meeting_type(make_pool("first_available", [rep]), slug="ktm", slot_interval_minutes=60)
    with time_machine.travel(utc(2026, 3, 2, 0, 0), tick=False):
        offered = api.get(
            "/api/v1/meeting-types/ktm/slots",
            {"timezone": "America/St_Johns", "start": "2026-03-05", "end": "2026-03-05"},
        ).json()["slots"]
        assert offered[0]["start"] == "2026-03-05T00:45:00-03:30", offered
        data = body(start="2026-03-05T18:00:00+13:45", timezone="America/St_Johns", answers={})
        first = api.post("/api/v1/meeting-types/ktm/bookings", data, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        data["start"] = "2026-03-05T04:15:00Z"
        again = api.post("/api/v1/meeting-types/ktm/bookings", data, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.json()
    assert first.json()["start"] == "2026-03-05T00:45:00-03:30"
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.json()
    assert again.json()["id"] == first.json()["id"]
