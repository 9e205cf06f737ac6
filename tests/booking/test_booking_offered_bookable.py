"""The slot page and the booking API agree: every offered start can be booked, no other start can, the
slots change as a booking says, and the hosts are the ones the strategy promises.

Property tests (hypothesis) build random pools (reps in zones with half-hour and DST changes, weekly hours,
date overrides, time off, busy time, caps, bookings of another pool) on a frozen clock, compare the API with
a slow, independent model of the rules of routing/core/README.md, and book through the API.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from booking.models import Booking, BookingHost, MeetingType
from calendars.models import BusyInterval, DateOverride, TimeOff, WorkingHours
from routing.models import Pool, PoolMember, Rep

pytestmark = pytest.mark.django_db

UTC = dt.UTC
_seq = itertools.count(1)
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "UTC",
    "America/Santiago",
    "America/Havana",
    "Asia/Beirut",
]
# frozen instants a day or two before a change of clocks somewhere (US 8 Mar / 1 Nov, EU 29 Mar / 25 Oct,
# Lord Howe 5 Apr / 4 Oct, Chatham 5 Apr / 27 Sep)
NOWS = [
    dt.datetime(2026, 3, 6, 21, 0, 17, tzinfo=UTC),
    dt.datetime(2026, 3, 27, 10, 0, tzinfo=UTC),
    dt.datetime(2026, 10, 23, 22, 30, tzinfo=UTC),
    dt.datetime(2026, 10, 30, 3, 0, tzinfo=UTC),
    dt.datetime(2026, 4, 3, 13, 0, tzinfo=UTC),
    dt.datetime(2026, 9, 25, 8, 0, tzinfo=UTC),
    dt.datetime(2026, 10, 2, 12, 0, tzinfo=UTC),
    dt.datetime(2026, 9, 4, 1, 0, tzinfo=UTC),
    dt.datetime(2026, 3, 27, 20, 0, tzinfo=UTC),
    dt.datetime(2026, 4, 3, 23, 59, 59, tzinfo=UTC),
]


@pytest.fixture(autouse=True)
def _no_read_limit(settings):
    settings.API_READ_RATE_LIMIT = ""


# --------------------------------------------------------------------------------------------- the model


class M:
    """The test's own picture of a pool (what it wrote to the database)."""

    def __init__(self, strategy, mt, pool, members, reps, bookings):
        self.strategy, self.mt, self.pool = strategy, mt, pool
        self.tokens = []  # (manage token, start, host ids, assigned at)
        self.members = members  # list of dicts: rep (dict), rank, weight, role, cap, active, count, last
        self.reps = reps
        self.bookings = bookings  # (rep_id, pool_id, start, blocked_start, blocked_end)


def _local(tz, day, t, *, end=False):
    if end and t == dt.time(0):
        day, t = day + dt.timedelta(days=1), dt.time(0)
    # fold=0: an ambiguous time is its first occurrence, a time in a gap is moved forward by the gap
    return dt.datetime.combine(day, t, tzinfo=ZoneInfo(tz)).astimezone(UTC)


_WINDOWS: dict = {}


def _windows(rep, day):
    """Merged UTC working windows of local dates day-2 … day+2."""
    key = (rep["id"], day)
    if key not in _WINDOWS:
        _WINDOWS[key] = _windows_of(rep, day)
    return _WINDOWS[key]


def _windows_of(rep, day):
    spans = []
    for k in range(-2, 3):
        d = day + dt.timedelta(days=k)
        ranges = rep["overrides"][d] if d in rep["overrides"] else rep["weekly"].get(d.weekday(), [])
        for a, b in ranges:
            s, e = _local(rep["tz"], d, a), _local(rep["tz"], d, b, end=True)
            if e > s:
                spans.append((s, e))
    spans.sort()
    out = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def why_not(m: M, member, s, now):
    """The first rule that keeps ``member`` from a meeting at ``s`` (None: free), by the README's rules."""
    rep, mt = member["rep"], m.mt
    if not (member["active"] and rep["active"]):
        return "inactive"
    if not any(rep["weekly"].values()) and not any(rep["overrides"].values()):
        return "no_working_hours"
    if s < now + dt.timedelta(minutes=mt.minimum_notice_minutes):
        return "notice"
    if s >= now + dt.timedelta(days=mt.horizon_days):
        return "horizon"
    wall = s.astimezone(ZoneInfo(rep["tz"]))
    if wall.second or wall.microsecond or (wall.hour * 60 + wall.minute) % mt.slot_interval_minutes:
        return "off_grid"
    e = s + dt.timedelta(minutes=mt.duration_minutes)
    if not any(a <= s and e <= b for a, b in _windows(rep, wall.date())):
        return "outside_working_hours"
    if any(a < e and s < b for a, b in rep["time_off"]):
        return "time_off"
    day = wall.date()
    mine = [b for b in m.bookings if b[0] == rep["id"]]
    on_day = [b for b in mine if b[2].astimezone(ZoneInfo(rep["tz"])).date() == day]
    if rep["cap"] is not None and len(on_day) >= rep["cap"]:
        return "cap"
    if member["cap"] is not None and len([b for b in on_day if b[1] == m.pool.pk]) >= member["cap"]:
        return "cap"
    lo = s - dt.timedelta(minutes=mt.buffer_before_minutes)
    hi = e + dt.timedelta(minutes=mt.buffer_after_minutes)
    if any(a < hi and lo < b for a, b in rep["busy"]) or any(b[3] < hi and lo < b[4] for b in mine):
        return "busy"
    return None


def count_of(mm, pool, now):
    """Counted assignments of the current fairness period (``day``: since 00:00 UTC; ``never``: all)."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) if pool.fairness_period == "day" else None
    return sum(1 for t in mm["times"] if start is None or t >= start)


def next_up(members, pool=None, now=None):
    def key(mm):
        last = mm["last"]
        return (
            round((count_of(mm, pool, now) if pool else mm["count"]) / mm["weight"], 9),
            0 if last is None else 1,
            0.0 if last is None else last.timestamp(),
            mm["rank"],
            mm["rep"]["id"],
        )

    return sorted(members, key=key), key


def candidates(m: M, lo, hi):
    """Every UTC instant on a 5-minute grid in [lo, hi) (all reps' grids fall on it)."""
    t = lo.replace(second=0, microsecond=0)
    t -= dt.timedelta(minutes=t.minute % 5)
    while t < lo:
        t += dt.timedelta(minutes=5)
    out = []
    while t < hi:
        out.append(t)
        t += dt.timedelta(minutes=5)
    return out


def expected_hosts(m: M, s, now):
    """The hosts (rep ids, in role order for group) the strategy promises at ``s``; [] when nobody."""
    order, key = next_up(m.members, m.pool, now)
    if m.strategy in ("first_available", "round_robin"):
        free = [mm for mm in order if why_not(m, mm, s, now) is None]
        return [free[0]["rep"]["id"]] if free else []
    if m.strategy == "ranked":
        ranked = sorted(m.members, key=lambda mm: (mm["rank"], *key(mm)))
        free = [mm for mm in ranked if why_not(m, mm, s, now) is None]
        return [free[0]["rep"]["id"]] if free else []
    hosts = []
    if m.pool.group_order == "rank":
        order = sorted(m.members, key=lambda mm: (mm["rank"], *key(mm)))
    for role in sorted({mm["role"] for mm in m.members}):
        free = [mm for mm in order if mm["role"] == role and why_not(m, mm, s, now) is None]
        if not free:
            return []
        hosts.append(free[0]["rep"]["id"])
    return hosts


def expected_offered(m: M, lo, hi, now):
    mt = m.mt
    earliest = now + dt.timedelta(minutes=mt.minimum_notice_minutes)
    latest = now + dt.timedelta(days=mt.horizon_days)
    grid = candidates(m, max(lo, earliest), min(hi, latest))
    if m.strategy != "round_robin":
        return {s for s in grid if expected_hosts(m, s, now)}
    order, _ = next_up(m.members, m.pool, now)
    whole = candidates(m, earliest, latest)
    for mm in order:
        mine = {s for s in grid if why_not(m, mm, s, now) is None}
        if mine:
            return mine
        if any(why_not(m, mm, s, now) is None for s in whole):
            return set()
    return set()


# ------------------------------------------------------------------------------------------- building


def t_(minutes):
    return dt.time(minutes // 60, minutes % 60) if minutes < 1440 else dt.time(0)


@st.composite
def hours_ranges(draw):
    """0–2 non-overlapping local ranges of a day, in whole half hours (an end of 24:00 is time(0))."""
    n = draw(st.integers(0, 2))
    points = sorted(draw(st.lists(st.integers(0, 48), min_size=2 * n, max_size=2 * n, unique=True)))
    return [(t_(points[2 * i] * 30), t_(points[2 * i + 1] * 30)) for i in range(n)]


@st.composite
def scenarios(draw):
    strategy = draw(st.sampled_from(["round_robin", "first_available", "ranked", "group"]))
    now = draw(st.sampled_from(NOWS))
    n = draw(st.integers(2, 3)) if strategy == "group" else draw(st.integers(1, 3))
    reps = []
    for i in range(n):
        tz = draw(st.sampled_from(ZONES))
        broad = draw(st.booleans())  # most reps work most days, so that slots exist
        weekly = {}
        for wd in range(7):
            if broad and draw(st.integers(0, 3)):
                a = draw(st.integers(0, 40))
                b = draw(st.integers(a + 2, 48))
                weekly[wd] = [(t_(a * 30), t_(b * 30))]
            else:
                weekly[wd] = draw(hours_ranges())
        day0 = now.date()
        overrides = {}
        for k in draw(st.lists(st.integers(-1, 4), max_size=2, unique=True)):
            overrides[day0 + dt.timedelta(days=k)] = draw(hours_ranges())

        def instant():
            return now + dt.timedelta(minutes=15 * draw(st.integers(-8, 4 * 24 * 4)))

        def spans(k):
            out = []
            for _ in range(draw(st.integers(0, k))):
                a = instant()
                out.append((a, a + dt.timedelta(minutes=draw(st.sampled_from([10, 30, 45, 90, 240])))))
            return out

        reps.append(
            {
                "tz": tz,
                "weekly": weekly,
                "overrides": overrides,
                "time_off": spans(1),
                "busy": spans(3),
                "cap": draw(st.one_of(st.none(), st.integers(1, 3))),
                "active": draw(st.integers(0, 9)) > 0,
                "member": {
                    "rank": draw(st.integers(0, 3)),
                    "weight": draw(st.sampled_from([1.0, 2.0, 0.5])),
                    "role": ("ae" if i == 0 else "se" if i == 1 else draw(st.sampled_from(["ae", "se"])))
                    if strategy == "group"
                    else "",
                    "cap": draw(st.one_of(st.none(), st.integers(1, 2))),
                    "active": draw(st.integers(0, 9)) > 0,
                },
                # another pool's 30-minute bookings, apart from each other
                "other": [
                    t + dt.timedelta(hours=3 * k) for t in [instant()] for k in range(draw(st.integers(0, 2)))
                ],
            }
        )
    mt = {
        "duration_minutes": draw(st.sampled_from([15, 30, 45, 60, 90, 120, 300])),
        "slot_interval_minutes": draw(st.sampled_from([5, 10, 15, 20, 30, 60])),
        "buffer_before_minutes": draw(st.sampled_from([0, 0, 10, 15, 60, 240])),
        "buffer_after_minutes": draw(st.sampled_from([0, 0, 5, 30, 240])),
        "minimum_notice_minutes": draw(st.sampled_from([0, 60, 240, 1440, 2000])),
        "horizon_days": draw(st.integers(1, 5)),
    }
    zone = draw(st.sampled_from(ZONES))
    mt["_pool"] = {
        "fairness_period": draw(st.sampled_from(["never", "day"])),
        "group_order": draw(st.sampled_from(["next_up", "rank"])),
        "count_cancellations": draw(st.booleans()),
    }
    return strategy, now, reps, mt, zone


def build(strategy, now, reps, mt_fields) -> M:
    n = next(_seq)
    mt_fields = dict(mt_fields)
    pool = Pool.objects.create(name=f"H {n}", slug=f"prop-{n}", strategy=strategy, **mt_fields.pop("_pool"))
    other = Pool.objects.create(name=f"O {n}", slug=f"prop-o-{n}", strategy="first_available")
    mt = MeetingType.objects.create(pool=pool, slug=f"prop-{n}", title="Property", questions=[], **mt_fields)
    other_mt = MeetingType.objects.create(
        pool=other, slug=f"prop-o-{n}", title="Other", questions=[], duration_minutes=30
    )
    members, rep_dicts, bookings = [], [], []
    for i, spec in enumerate(reps):
        rep = Rep.objects.create(
            name=f"R{n}-{i}", email=f"prop{n}-{i}@example.com", timezone=spec["tz"],
            daily_cap=spec["cap"], active=spec["active"],
        )  # fmt: skip
        WorkingHours.objects.bulk_create(
            WorkingHours(rep=rep, weekday=wd, start=a, end=b)
            for wd, rr in spec["weekly"].items()
            for a, b in rr
        )
        for day, rr in spec["overrides"].items():
            if not rr:
                DateOverride.objects.create(rep=rep, date=day)
            for a, b in rr:
                DateOverride.objects.create(rep=rep, date=day, start=a, end=b)
        for a, b in spec["time_off"]:
            TimeOff.objects.create(rep=rep, start=a, end=b)
        for a, b in spec["busy"]:
            BusyInterval.objects.create(rep=rep, start=a, end=b)
        ms = spec["member"]
        PoolMember.objects.create(
            pool=pool, rep=rep, rank=ms["rank"], weight=ms["weight"], role=ms["role"],
            daily_cap=ms["cap"], active=ms["active"],
        )  # fmt: skip
        PoolMember.objects.create(pool=other, rep=rep)
        for k, start in enumerate(spec["other"]):
            b = Booking.objects.create(
                meeting_type=other_mt, pool=other, start=start, end=start + dt.timedelta(minutes=30),
                status="confirmed", prospect_name="X", prospect_email="x@example.com",
                prospect_timezone="UTC", manage_token_hash=f"prop-{n}-{i}-{k}", decision={},
            )  # fmt: skip
            BookingHost.objects.create(
                booking=b, rep=rep, blocked_start=b.start, blocked_end=b.end, active=True, assigned_at=now
            )
            bookings.append((rep.pk, other.pk, start, b.start, b.end))
        rd = {
            "id": rep.pk,
            "email": rep.email,
            "tz": spec["tz"],
            "weekly": spec["weekly"],
            "overrides": spec["overrides"],
            "time_off": spec["time_off"],
            "busy": spec["busy"],
            "cap": spec["cap"],
            "active": spec["active"],
        }
        rep_dicts.append(rd)
        members.append({**ms, "rep": rd, "count": 0.0, "last": None, "times": []})
    return M(strategy, mt, pool, members, rep_dicts, bookings)


# ------------------------------------------------------------------------------------------------- API


def get_slots(api, slug, zone, first, last):
    r = api.get(
        f"/api/v1/meeting-types/{slug}/slots",
        {"timezone": zone, "start": first.isoformat(), "end": last.isoformat()},
    )
    assert r.status_code == 200, r.content
    return r.json()


def post(api, slug, start: str, zone="UTC"):
    return api.post(
        f"/api/v1/meeting-types/{slug}/bookings",
        {"start": start, "name": "Pat", "email": "pat@example.org", "timezone": zone, "answers": {}},
        format="json",
    )


def check_shape(body, mt, zone, first, last):
    """Invariant 4: starts in the asked zone with its offset, sorted, unique, on the asked local dates."""
    z = ZoneInfo(zone)
    starts = []
    for slot in body["slots"]:
        s, e = dt.datetime.fromisoformat(slot["start"]), dt.datetime.fromisoformat(slot["end"])
        assert s.utcoffset() == s.astimezone(z).utcoffset(), slot
        assert e.utcoffset() == e.astimezone(z).utcoffset(), slot
        assert e - s == dt.timedelta(minutes=mt.duration_minutes), slot
        assert first <= s.astimezone(z).date() <= last, slot
        starts.append(s.astimezone(UTC))
    assert starts == sorted(set(starts)), "starts not sorted or not unique"
    return starts


def hosts_of(model: M, response):
    emails = {r["email"]: r["id"] for r in model.reps}
    return [emails[h["email"]] for h in response.json()["hosts"]]


def record_booking(model: M, s, host_ids, now):
    mt = model.mt
    for rid in host_ids:
        model.bookings.append(
            (
                rid,
                model.pool.pk,
                s,
                s - dt.timedelta(minutes=mt.buffer_before_minutes),
                s + dt.timedelta(minutes=mt.duration_minutes + mt.buffer_after_minutes),
            )
        )
        for mm in model.members:
            if mm["rep"]["id"] == rid:
                mm["count"] += 1
                mm["times"].append(now)
                mm["last"] = now


# ---------------------------------------------------------------------------------------- the property


# The same examples on every run (a build does not fail by chance); OFFERED_EXAMPLES=1000 and
# OFFERED_RANDOM=1 explore further (about 1,700 random examples found nothing on 2026-12-07).
@hsettings(
    max_examples=int(os.environ.get("OFFERED_EXAMPLES", 40)),
    derandomize=not os.environ.get("OFFERED_RANDOM"),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios(), data=st.data())
def test_property_offered_starts_are_exactly_the_bookable_ones(api, scenario, data):
    strategy, now, reps, mt_fields, zone = scenario
    with time_machine.travel(now, tick=False) as clock:
        model = build(strategy, now, reps, mt_fields)
        mt = model.mt
        z = ZoneInfo(zone)
        first0 = now.astimezone(z).date() - dt.timedelta(days=1)
        span = ((now + dt.timedelta(days=mt.horizon_days)).astimezone(z).date() - first0).days + 2
        _WINDOWS.clear()
        for _cycle in range(3):
            now = dt.datetime.now(UTC)
            first = first0 + dt.timedelta(days=data.draw(st.integers(0, span - 1)))
            last = first + dt.timedelta(days=data.draw(st.integers(0, span)))
            if data.draw(st.booleans()):
                first, last = first0, first0 + dt.timedelta(days=span)
            lo = dt.datetime.combine(first, dt.time(0), tzinfo=z).astimezone(UTC)
            hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=z).astimezone(UTC)
            body = get_slots(api, mt.slug, zone, first, last)
            offered = check_shape(body, mt, zone, first, last)
            expected = expected_offered(model, lo, hi, now)
            assert set(offered) == expected, (
                f"offered vs model: extra {sorted(set(offered) - expected)[:3]}, "
                f"missing {sorted(expected - set(offered))[:3]}"
            )
            # invariant 2: starts not offered are refused (round_robin books any free rep, as documented)
            pool_free = {s for s in candidates(model, lo, hi) if expected_hosts(model, s, now)}
            others = sorted(set(candidates(model, lo, hi)) - set(offered))
            if strategy == "round_robin":
                others = [s for s in others if s not in pool_free]
            if others:
                for s in data.draw(st.lists(st.sampled_from(others), max_size=3, unique=True)):
                    r = post(api, mt.slug, s.astimezone(z).isoformat(), zone)
                    assert r.status_code in (400, 409), (s, r.status_code, r.content)
                    alts = [dt.datetime.fromisoformat(x) for x in r.json().get("alternatives", [])]
                    if alts:  # a 409's alternatives are offered starts after the refused one, in the zone
                        wide = expected_offered(
                            model, now - dt.timedelta(days=1), now + dt.timedelta(days=8), now
                        )
                        assert all(x in wide and x > s for x in alts), (s, alts)
                        assert all(x.utcoffset() == x.astimezone(z).utcoffset() for x in alts), alts
            event(f"offered>0: {bool(offered)}")
            if not offered:
                break
            # invariant 1 and 5: an offered start books, with the promised hosts
            s = data.draw(st.sampled_from(offered))
            want = expected_hosts(model, s, now)
            r = post(api, mt.slug, s.astimezone(z).isoformat(), zone)
            assert r.status_code == 201, (s, r.status_code, r.content)
            got = hosts_of(model, r)
            if strategy == "group":
                assert sorted(got) == sorted(want), (s, got, want)
            else:
                assert got == want, (s, got, want)
            record_booking(model, s, got, now)
            model.tokens.append((r.json()["manage_token"], s, got, now))
            clock.shift(dt.timedelta(minutes=data.draw(st.sampled_from([1, 1, 30, 600]))))
            if model.tokens and data.draw(st.booleans()):  # cancel one: its time frees at once
                token, s0, hosts0, at0 = model.tokens.pop(data.draw(st.integers(0, len(model.tokens) - 1)))
                if s0 > dt.datetime.now(UTC):
                    r = api.post(f"/api/v1/bookings/{token}/cancel", {"reason": ""}, format="json")
                    assert r.status_code == 200, r.content
                    model.bookings = [
                        b
                        for b in model.bookings
                        if not (b[1] == model.pool.pk and b[2] == s0 and b[0] in hosts0)
                    ]
                    if not model.pool.count_cancellations:
                        for mm in model.members:
                            if mm["rep"]["id"] in hosts0:
                                mm["times"].remove(at0)


def test_a_range_of_63_days_is_refused_and_62_answered(api):
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    mt = make_meeting_type(make_pool("first_available", [make_rep()]), slug="prop-range")
    day = dt.date(2026, 3, 2)
    ok = api.get(
        "/api/v1/meeting-types/prop-range/slots",
        {"start": day.isoformat(), "end": (day + dt.timedelta(days=61)).isoformat(), "timezone": "UTC"},
    )
    bad = api.get(
        "/api/v1/meeting-types/prop-range/slots",
        {"start": day.isoformat(), "end": (day + dt.timedelta(days=62)).isoformat(), "timezone": "UTC"},
    )
    assert ok.status_code == 200 and bad.status_code == 400
    assert bad.json()["code"] == "invalid" and mt
