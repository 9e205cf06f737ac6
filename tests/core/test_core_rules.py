"""Example tests, one group per slot rule, through the public ``free_starts`` and ``why_not_free``."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from core_oracle import ALL_DAY, at, member, rep

from routing.core import Interval, MeetingSpec, free_starts, why_not_free

MON = (2026, 3, 16)  # a Monday; Europe/London and UTC agree in March before the 29th
NOW = at(2026, 3, 16, 0, 0)
M30 = MeetingSpec(duration_minutes=30, slot_interval_minutes=15)


def day_window(zone="UTC", ymd=MON, days=1):
    start = at(*ymd, zone=zone)
    return Interval(start, start + timedelta(days=days))


def starts(m, meeting=M30, now=NOW, window=None, zone="UTC"):
    return free_starts(m, meeting, now=now, window=window or day_window(zone))


def hm(dts, zone="UTC"):
    from zoneinfo import ZoneInfo

    return [d.astimezone(ZoneInfo(zone)).strftime("%H:%M") for d in dts]


# --- 1. grid ------------------------------------------------------------------------------------------


def test_grid_is_aligned_to_local_midnight():
    got = starts(member(rep()))
    assert hm(got)[:3] == ["09:00", "09:15", "09:30"]
    assert why_not_free(member(rep()), M30, now=NOW, start=at(*MON, 9, 5)) == "off_grid"


def test_grid_in_kolkata_half_hour_offset():
    m = member(rep(zone="Asia/Kolkata"))
    hourly = MeetingSpec(duration_minutes=30, slot_interval_minutes=60)
    got = starts(m, hourly, zone="Asia/Kolkata")
    assert got[0] == at(*MON, 3, 30)  # 09:00 IST
    assert hm(got, "Asia/Kolkata") == ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert why_not_free(m, hourly, now=NOW, start=at(*MON, 4, 0)) == "off_grid"  # 09:30 IST


def test_45_minute_grid_counts_from_local_midnight():
    m = member(rep(zone="Asia/Kolkata", hours={0: ((time(8), time(12)),)}))
    grid45 = MeetingSpec(duration_minutes=30, slot_interval_minutes=45)
    got = starts(m, grid45, zone="Asia/Kolkata")
    assert hm(got, "Asia/Kolkata") == ["08:15", "09:00", "09:45", "10:30", "11:15"]


def test_grid_restarts_at_midnight_when_interval_does_not_divide_the_day():
    # 50 minutes: … 22:30, 23:20, then the grid restarts at 00:00, 00:50 (not 00:10)
    hours = {0: ((time(22), time(0)),), 1: ((time(0), time(2)),)}
    m = member(rep(hours=hours))
    grid50 = MeetingSpec(duration_minutes=50, slot_interval_minutes=50)
    got = starts(m, grid50, window=day_window(days=2))
    assert hm(got) == ["22:30", "23:20", "00:00", "00:50"]
    # 23:20–00:10 crosses midnight: Monday's window ending at time(0) touches Tuesday's, so they merge


# --- 2. working windows -------------------------------------------------------------------------------


def test_working_window_edges():
    m = member(rep())
    got = starts(m)
    assert got[0] == at(*MON, 9) and got[-1] == at(*MON, 16, 30)
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 16, 45)) == "outside_working_hours"
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 8, 45)) == "outside_working_hours"
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 16, 30)) is None


def test_meeting_may_not_straddle_a_gap_between_ranges_but_touching_ranges_merge():
    lunch = member(rep(hours={0: ((time(9), time(12)), (time(13), time(17)))}))
    assert why_not_free(lunch, M30, now=NOW, start=at(*MON, 11, 45)) == "outside_working_hours"
    touching = member(rep(hours={0: ((time(9), time(12)), (time(12), time(17)))}))
    assert why_not_free(touching, M30, now=NOW, start=at(*MON, 11, 45)) is None


def test_range_ending_at_time_zero_means_end_of_day():
    m = member(rep(hours={0: ((time(20), time(0)),)}))
    assert hm(starts(m))[-1] == "23:30"


def test_weekend_has_no_hours():
    sat = (2026, 3, 21)
    assert starts(member(rep()), window=day_window(ymd=sat)) == []


# --- 3. buffers and busy --------------------------------------------------------------------------------


def busy_rep(**kw):
    return member(rep(busy=(Interval(at(*MON, 10), at(*MON, 11)),), **kw))


@pytest.mark.parametrize(
    ("before", "after", "free", "busy"),
    [
        (0, 0, ["09:30", "11:00"], ["09:45", "10:45"]),  # touching is not overlapping
        (15, 0, ["09:30", "11:15"], ["11:00"]),  # buffer before the meeting reaches back into busy
        (0, 15, ["09:15", "11:00"], ["09:30"]),  # buffer after the meeting reaches into busy
    ],
)
def test_buffers_touching_versus_overlapping(before, after, free, busy):
    meeting = MeetingSpec(
        duration_minutes=30,
        slot_interval_minutes=15,
        buffer_before_minutes=before,
        buffer_after_minutes=after,
    )
    m = busy_rep()
    got = hm(starts(m, meeting))
    for t in free:
        assert t in got
    for t in busy:
        h, mi = map(int, t.split(":"))
        assert t not in got
        assert why_not_free(m, meeting, now=NOW, start=at(*MON, h, mi)) == "busy"


def test_busy_with_fractional_seconds_is_respected():
    m = member(rep(busy=(Interval(at(*MON, 9, 30) - timedelta(microseconds=1), at(*MON, 10)),)))
    got = hm(starts(m))
    assert "09:00" not in got and "09:15" not in got and "10:00" in got


# --- 4. notice and horizon ------------------------------------------------------------------------------


def test_minimum_notice():
    meeting = MeetingSpec(duration_minutes=30, slot_interval_minutes=15, minimum_notice_minutes=60)
    m = member(rep())
    now = at(*MON, 8, 0)
    assert starts(m, meeting, now=now)[0] == at(*MON, 9)
    late = now + timedelta(seconds=30)  # now + notice = 09:00:30, so 09:00 is too soon
    assert why_not_free(m, meeting, now=late, start=at(*MON, 9)) == "notice"
    assert why_not_free(m, meeting, now=now, start=at(*MON, 8, 45)) == "notice"
    assert starts(m, meeting, now=late)[0] == at(*MON, 9, 15)


def test_horizon():
    meeting = MeetingSpec(duration_minutes=30, slot_interval_minutes=15, horizon_days=1)
    m = member(rep(hours=ALL_DAY))
    now = at(*MON, 8)
    got = free_starts(m, meeting, now=now, window=Interval(now, now + timedelta(days=3)))
    assert got[-1] == at(2026, 3, 17, 7, 45)
    assert why_not_free(m, meeting, now=now, start=at(2026, 3, 17, 8)) == "horizon"


# --- 5. caps --------------------------------------------------------------------------------------------


def test_rep_cap_uses_the_reps_local_date():
    # 20:00 UTC Monday is 01:30 Tuesday in Kolkata
    r = rep(zone="Asia/Kolkata", hours=ALL_DAY, daily_cap=2, meetings_per_local_date={date(2026, 3, 17): 2})
    m = member(r)
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 18, 0)) is None  # 23:30 IST Monday
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 18, 30)) == "cap"  # 00:00 IST Tuesday
    below = member(rep(hours=ALL_DAY, daily_cap=2, meetings_per_local_date={date(*MON): 1}))
    assert why_not_free(below, M30, now=NOW, start=at(*MON, 12)) is None


def test_member_pool_cap():
    m = member(rep(), daily_cap=1, pool_meetings_per_local_date={date(*MON): 1})
    assert starts(m) == []
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 12)) == "cap"
    tuesday = day_window(ymd=(2026, 3, 17))
    assert starts(m, window=tuesday)[0] == at(2026, 3, 17, 9)


def test_cap_of_zero_blocks_every_day():
    m = member(rep(daily_cap=0))
    assert starts(m) == []
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 12)) == "cap"


# --- 6. time off, overrides, inactive --------------------------------------------------------------------


def test_time_off():
    m = member(rep(time_off=(Interval(at(*MON, 12), at(*MON, 14)),)))
    got = hm(starts(m))
    assert "11:30" in got and "14:00" in got and "11:45" not in got and "13:00" not in got
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 11, 45)) == "time_off"


def test_override_replaces_weekday_hours_and_empty_override_is_a_day_off():
    r = rep(
        date_overrides={
            date(*MON): ((time(13), time(15)),),
            date(2026, 3, 17): (),
            date(2026, 3, 21): ((time(10), time(11)),),
        }
    )
    m = member(r)
    assert hm(starts(m)) == ["13:00", "13:15", "13:30", "13:45", "14:00", "14:15", "14:30"]
    assert why_not_free(m, M30, now=NOW, start=at(*MON, 9)) == "outside_working_hours"
    assert starts(m, window=day_window(ymd=(2026, 3, 17))) == []
    assert hm(starts(m, window=day_window(ymd=(2026, 3, 21)))) == ["10:00", "10:15", "10:30"]  # a Saturday


def test_inactive_member_or_rep_and_no_working_hours():
    for m in (member(rep(), active=False), member(rep(active=False))):
        assert starts(m) == []
        assert why_not_free(m, M30, now=NOW, start=at(*MON, 9)) == "inactive"
    none = member(rep(hours={}))
    assert starts(none) == []
    assert why_not_free(none, M30, now=NOW, start=at(*MON, 9)) == "no_working_hours"


def test_naive_datetimes_are_rejected():
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError):
        free_starts(member(), M30, now=naive, window=day_window())
    with pytest.raises(ValueError):
        why_not_free(member(), M30, now=NOW, start=naive)


# --- 7. instant routing: the schedule rules at one instant -----------------------------------------------


def test_reason_now_applies_the_schedule_rules_without_grid_or_notice():
    from routing.core.availability import reason_now

    r = rep(
        busy=(Interval(at(*MON, 10), at(*MON, 11)),),
        time_off=(Interval(at(*MON, 14), at(*MON, 15)),),
    )
    assert reason_now(member(r), at(*MON, 9, 7)) is None  # off the grid, no notice: free now
    assert reason_now(member(r), at(*MON, 10, 59)) == "busy"
    assert reason_now(member(r), at(*MON, 11)) is None  # the busy interval is half-open
    assert reason_now(member(r), at(*MON, 14, 30)) == "time_off"
    assert reason_now(member(r), at(*MON, 17)) == "outside_working_hours"
    full = member(r, daily_cap=1, pool_meetings_per_local_date={date(*MON): 1})
    assert reason_now(full, at(*MON, 12)) == "cap"
    assert reason_now(member(r, active=False), at(*MON, 12)) == "inactive"
    with pytest.raises(ValueError):
        reason_now(member(r), at(*MON, 12).replace(tzinfo=None))
