"""DST: gaps move forward by the gap, ambiguous times mean their first occurrence, grids stay wall-clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core_oracle import at, member, rep
from dateutil.tz import datetime_exists

from routing.core import Interval, MeetingSpec, free_starts
from routing.core.localtime import day_number, local_to_epoch, offset_segments

M30 = MeetingSpec(duration_minutes=30, slot_interval_minutes=30, horizon_days=60)


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def on_day(zone: str, d: date, ranges, meeting=M30):
    m = member(rep(zone=zone, hours={}, date_overrides={d: ranges}))
    now = at(d.year, d.month, d.day) - timedelta(days=7)
    window = Interval(now, now + timedelta(days=14))
    return free_starts(m, meeting, now=now, window=window)


def local_strings(dts, zone):
    return [d.astimezone(ZoneInfo(zone)).strftime("%H:%M%z") for d in dts]


def test_new_york_spring_forward_moves_a_0230_boundary_to_0330():
    got = on_day("America/New_York", date(2026, 3, 8), ((time(2, 30), time(5)),))
    assert got == [utc("2026-03-08T07:30"), utc("2026-03-08T08:00"), utc("2026-03-08T08:30")]
    assert local_strings(got, "America/New_York") == ["03:30-0400", "04:00-0400", "04:30-0400"]


def test_new_york_spring_forward_start_inside_gap_and_grid_resumes_at_0300():
    got = on_day("America/New_York", date(2026, 3, 8), ((time(1), time(4)),))
    # 01:00, 01:30 EST, then the clock jumps to 03:00 EDT; 01:30–02:00 EST is 30 real minutes
    assert local_strings(got, "America/New_York") == ["01:00-0500", "01:30-0500", "03:00-0400", "03:30-0400"]


def test_new_york_fall_back_ambiguous_0130_means_first_occurrence():
    got = on_day("America/New_York", date(2026, 11, 1), ((time(1, 30), time(3)),))
    assert got[0] == utc("2026-11-01T05:30")  # 01:30 EDT, not 01:30 EST (06:30Z)
    assert got[-1] == utc("2026-11-01T07:30")  # last start 02:30 EST, ending 03:00 EST
    # the repeated hour is real time, so both 01:30s are on the wall-clock grid
    assert local_strings(got, "America/New_York") == [
        "01:30-0400",
        "01:00-0500",
        "01:30-0500",
        "02:00-0500",
        "02:30-0500",
    ]


def test_lord_howe_half_hour_shifts():
    # spring forward 2026-10-04: 02:00 +10:30 → 02:30 +11:00; 02:00 does not exist and moves to 02:30
    got = on_day("Australia/Lord_Howe", date(2026, 10, 4), ((time(2), time(4)),))
    assert local_strings(got, "Australia/Lord_Howe") == ["02:30+1100", "03:00+1100", "03:30+1100"]
    # fall back 2026-04-05: 02:00 +11 → 01:30 +10:30; 01:45 is ambiguous → first occurrence (+11:00)
    got = on_day(
        "Australia/Lord_Howe",
        date(2026, 4, 5),
        ((time(1, 45), time(2, 30)),),
        MeetingSpec(duration_minutes=15, slot_interval_minutes=15, horizon_days=60),
    )
    assert got[0] == utc("2026-04-04T14:45")
    assert local_strings(got, "Australia/Lord_Howe") == [
        "01:45+1100",
        "01:30+1030",
        "01:45+1030",
        "02:00+1030",
        "02:15+1030",
    ]


def test_chatham_quarter_hour_offsets():
    # standard +12:45: 09:00 local is 20:15 UTC the day before
    got = on_day("Pacific/Chatham", date(2026, 6, 15), ((time(9), time(10)),))
    assert got == [utc("2026-06-14T20:15"), utc("2026-06-14T20:45")]
    # DST +13:45: 09:00 local is 19:15 UTC
    got = on_day("Pacific/Chatham", date(2026, 1, 15), ((time(9), time(10)),))
    assert got == [utc("2026-01-14T19:15"), utc("2026-01-14T19:45")]
    # spring forward 2026-09-27 02:45 → 03:45: a 03:00 boundary moves to 04:00 (+13:45)
    got = on_day("Pacific/Chatham", date(2026, 9, 27), ((time(3), time(5)),))
    assert local_strings(got, "Pacific/Chatham") == ["04:00+1345", "04:30+1345"]


def test_no_offered_start_is_at_a_nonexistent_local_time():
    for zone, d in [
        ("America/New_York", date(2026, 3, 8)),
        ("Australia/Lord_Howe", date(2026, 10, 4)),
        ("Pacific/Chatham", date(2026, 9, 27)),
        ("Europe/Berlin", date(2026, 3, 29)),
    ]:
        got = on_day(zone, d, ((time(0), time(0)),), MeetingSpec(15, 15, horizon_days=60))
        for s in got:
            assert datetime_exists(s.astimezone(ZoneInfo(zone)).replace(tzinfo=None), tz=ZoneInfo(zone))
        # 24 wall hours minus the gap, in 15-minute steps
        gap = 30 if zone == "Australia/Lord_Howe" else 60
        assert len(got) == (24 * 60 - gap) // 15


def test_local_to_epoch_and_offset_segments():
    ny = "America/New_York"
    day = day_number(date(2026, 3, 8))
    assert local_to_epoch(ny, day, 2 * 3600 + 1800) == int(utc("2026-03-08T07:30").timestamp())
    # second 86400 is the midnight that ends the day
    assert local_to_epoch(ny, day, 86_400) == int(utc("2026-03-09T04:00").timestamp())
    segs = offset_segments(ny, day, day)
    assert [(s[2]) for s in segs] == [-5 * 3600, -4 * 3600]
    assert segs[0][1] == int(utc("2026-03-08T07:00").timestamp())


def test_within_working_hours_reads_local_hours_across_the_change():
    from routing.core.availability import within_working_hours

    berlin = rep(zone="Europe/Berlin", hours={6: ((time(9), time(17)),)})  # Sundays 09:00–17:00
    # 29 March 2026, the spring change: 09:00 CEST is 07:00 UTC (08:00 UTC a week before)
    assert within_working_hours(berlin, utc("2026-03-29T07:00"), utc("2026-03-29T07:30"))
    assert not within_working_hours(berlin, utc("2026-03-29T06:30"), utc("2026-03-29T07:30"))
    assert within_working_hours(berlin, utc("2026-03-22T08:00"), utc("2026-03-22T16:00"))
    assert not within_working_hours(berlin, utc("2026-03-22T07:00"), utc("2026-03-22T07:30"))
    off = rep(zone="Europe/Berlin", hours={6: ((time(9), time(17)),)}, date_overrides={date(2026, 3, 29): ()})
    assert not within_working_hours(off, utc("2026-03-29T07:00"), utc("2026-03-29T07:30"))
