"""What expanding an ICS feed's recurring events would cost, bounded before recurring-ical-events runs.

recurring-ical-events (through dateutil) steps through every recurrence of a series from its DTSTART, and
builds a component for every instance in the window it is asked about. A feed is input from outside: one
``RRULE:FREQ=SECONDLY`` event is 15.5 million instances in the 180-day sync window (measured: 4.6 million
in 60 days took 469 s), and ``FREQ=HOURLY`` since 1900 is 1.1 million steps before the window (3.9 s). No
calendar program writes such rules, but one feed must not stall the sync worker or a booking's live check.

So before expanding, each series is bounded from above by arithmetic on its rules: the steps from DTSTART
to the window's end (or UNTIL, or COUNT), the instances one step can make (the BYxxx lists that expand a
frequency: BYHOUR for a daily rule, BYDAY for a weekly one …), and RDATEs one each. A feed whose bounds pass
``CALENDAR_ICS_MAX_INSTANCES`` instances in the window, or 50 times as many steps, is refused with an
``InvalidFeed`` that the calendar's status shows; its rep is withheld once the calendar goes stale, as for any
feed that cannot be read. The bounds are upper bounds (a test compares them with the library's own
expansion), loose for rare day-of-year rules and tight for the common ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

# seconds of the shortest period of each frequency (a month is at least 28 days, a year 365)
PERIOD_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
ORDER = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
STEPS_PER_INSTANCE = 50  # the steps allowed per instance allowed in the window
SLACK = timedelta(days=2)  # more than the widest gap between two UTC offsets (+14:00 to -12:00: 26 h)


class BadRule(ValueError):
    """A rule the expansion would never finish (INTERVAL=0 steps in place forever)."""


@dataclass
class Cost:
    steps: int = 0  # rule iterations up to the window's end, over all series
    instances: int = 0  # instances that can overlap the window, over all series


def _naive(value, zone: ZoneInfo) -> datetime | None:
    """A DTSTART/UNTIL value as a wall-clock time in the rep's zone (the frame the expansion is asked in)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
        try:
            return value.astimezone(zone).replace(tzinfo=None)
        except OverflowError:  # year 1 or 9999: hours do not matter to a bound
            return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)  # noqa: DTZ001 — a wall-clock time
    return None


def _wall(value) -> datetime | None:
    """An UNTIL as written (its own zone's wall clock; ``_shift`` by SLACK covers any other reading)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return _naive(value, ZoneInfo("UTC"))


def _shift(value: datetime, delta: timedelta) -> datetime:
    try:
        return value + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min  # noqa: DTZ901 — wall-clock times


def _duration(event: icalendar.Event) -> timedelta:
    try:
        if event.get("DURATION") is not None:
            length = event["DURATION"].dt
        elif event.get("DTEND") is not None:
            length = event["DTEND"].dt - event["DTSTART"].dt
        else:
            return timedelta(days=1)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return timedelta(0)
    return length if isinstance(length, timedelta) and length > timedelta(0) else timedelta(0)


def _ints(rule, key: str) -> list[int]:
    out = []
    for value in rule.get(key, []):
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


def _per_month(rule) -> int:
    """Instances one month can hold under BYMONTHDAY / BYDAY (1: the DTSTART's day)."""
    monthdays = len(rule.get("BYMONTHDAY", [])) or None
    byday = rule.get("BYDAY", [])
    weekdays = sum(1 if str(d)[:1] in "+-0123456789" else 5 for d in byday) or None
    if monthdays is None and weekdays is None:
        return 1
    return min(31, monthdays or 31, weekdays or 31)


def _per_step(rule, freq: str) -> int:
    """Instances one step of ``freq`` can make: the BYxxx lists finer than the frequency expand it."""
    rank = ORDER.index(freq)
    if freq == "WEEKLY":
        days = min(7, len(rule.get("BYDAY", [])) or 1)
    elif freq == "MONTHLY":
        days = _per_month(rule)
    elif freq == "YEARLY":
        if rule.get("BYYEARDAY"):
            days = min(366, len(rule["BYYEARDAY"]))
        elif rule.get("BYWEEKNO"):
            days = min(366, len(rule["BYWEEKNO"]) * min(7, len(rule.get("BYDAY", [])) or 7))
        else:
            months = len(rule.get("BYMONTH", [])) or 12
            one_day = not (rule.get("BYMONTH") or rule.get("BYMONTHDAY") or rule.get("BYDAY"))
            days = 1 if one_day else min(366, months * _per_month(rule))
    else:
        days = 1
    times = 1
    for key, finer_than in (("BYHOUR", 2), ("BYMINUTE", 1), ("BYSECOND", 0)):
        if rank > finer_than and rule.get(key):
            times *= len(rule[key])
    return days * times


def _restricted(rule, freq: str) -> bool:
    """Whether BYxxx lists can drop steps (then COUNT does not bound the steps, only the instances)."""
    rank = ORDER.index(freq)
    coarse = {"BYSECOND": 0, "BYMINUTE": 1, "BYHOUR": 2}
    for key in rule:
        if key in coarse and rank <= coarse[key]:
            return True
        if key in ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO") and rank <= ORDER.index("DAILY"):
            return True
        if (key == "BYMONTH" and rank < ORDER.index("YEARLY")) or key == "BYSETPOS":
            return True
    return False


def _rule_cost(rule, begin: datetime, length: timedelta, window: tuple[datetime, datetime]) -> Cost:
    if not isinstance(rule, dict):
        return Cost()  # not a parsed RRULE: the library skips the series
    freq = str((rule.get("FREQ") or [""])[0]).upper()
    if freq not in PERIOD_SECONDS:
        return Cost()  # the library skips a series it cannot read
    interval = (_ints(rule, "INTERVAL") or [1])[0]
    if interval < 1:
        raise BadRule(f"INTERVAL={interval}")
    period = PERIOD_SECONDS[freq] * interval
    # Which zone the library reads a bound, an UNTIL or a DTSTART in depends on the event (floating, zoned,
    # UTC); every comparison here is widened by SLACK, more than any two offsets differ, so the bounds
    # stay above whichever reading it takes.
    start, end = _shift(window[0], -length - SLACK), _shift(window[1], SLACK)
    until = [_shift(u, SLACK) for u in (_wall(v) for v in rule.get("UNTIL", [])) if u is not None]
    last = min([end, *until])
    begin = _shift(begin, -SLACK)
    per_step = _per_step(rule, freq)
    count = (_ints(rule, "COUNT") or [None])[0]

    def steps_between(a: datetime, b: datetime) -> int:
        return 0 if b < a else int((b - a).total_seconds() // period) + 1

    steps = steps_between(begin, last)
    in_window = steps_between(max(begin, start), last) * per_step
    if count is not None:
        in_window = min(in_window, max(count, 0))
        if not _restricted(rule, freq):
            steps = min(steps, max(count, 0))
    # DTSTART is an instance of its own even where the rule does not match it
    return Cost(steps=steps + 1, instances=in_window + 1)


def expansion_cost(calendar: icalendar.Calendar, window: tuple[datetime, datetime], zone: ZoneInfo) -> Cost:
    """Upper bounds of the work ``recurring_ical_events.of(calendar).between(*window)`` does for the
    feed's recurring series (``window`` in wall-clock times of ``zone``, as the expansion is asked)."""
    total = Cost()
    for event in calendar.walk("VEVENT"):
        rules = event.get("RRULE")
        dates = event.get("RDATE")
        exrules = event.get("EXRULE")
        if rules is None and dates is None and exrules is None:
            continue  # a single event: one instance, bounded by the feed's size
        try:
            begin = _naive(getattr(event.get("DTSTART"), "dt", None), zone)
            listed = sum(len(getattr(entry, "dts", [])) for entry in _listed(dates))
        except ValueError:  # icalendar's BrokenCalendarProperty: the library leaves the series out, says so
            continue
        if begin is None:
            continue
        length = _duration(event)
        for rule in _listed(rules):
            cost = _rule_cost(rule, begin, length, window)
            total.steps += cost.steps
            total.instances += cost.instances
        for rule in _listed(exrules):  # EXRULE removes instances, but its steps are taken all the same
            total.steps += _rule_cost(rule, begin, length, window).steps
        total.steps += listed  # RDATEs: one each
        total.instances += listed
    return total


def _listed(value) -> list:
    """A property given once is a value, given several times a list."""
    return [] if value is None else value if isinstance(value, list) else [value]
