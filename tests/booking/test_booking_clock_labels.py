"""The night the clocks go back a wall time happens twice: the manage page's and the e-mails' labels of
such a time carry its UTC offset (both 02:00 read the same before); other times stay plain."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from booking.emails import _when
from booking.presenters import when_label

BERLIN = ZoneInfo("Europe/Berlin")
FIRST = dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)  # 02:00 CEST
SECOND = dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC)  # 02:00 CET
HALF = dt.timedelta(minutes=30)


def test_the_two_0200s_of_the_fall_back_night_read_differently():
    first, second = when_label(FIRST, FIRST + HALF, BERLIN), when_label(SECOND, SECOND + HALF, BERLIN)
    assert first == "Sunday 25 October 2026, 02:00 UTC+02:00–02:30 UTC+02:00"
    assert second == "Sunday 25 October 2026, 02:00 UTC+01:00–02:30 UTC+01:00"


def test_an_unambiguous_time_has_no_offset():
    start = dt.datetime(2026, 10, 26, 9, 0, tzinfo=dt.UTC)
    assert when_label(start, start + HALF, BERLIN) == "Monday 26 October 2026, 10:00–10:30"
    snap = {"start": start.isoformat(), "end": (start + HALF).isoformat()}
    assert _when(snap, "Europe/Berlin") == "Monday 26 October 2026, 10:00–10:30 (Europe/Berlin)"


def test_the_email_names_which_0200():
    snap = {"start": SECOND.isoformat(), "end": (SECOND + HALF).isoformat()}
    assert (
        _when(snap, "Europe/Berlin")
        == "Sunday 25 October 2026, 02:00 UTC+01:00–02:30 UTC+01:00 (Europe/Berlin)"
    )
