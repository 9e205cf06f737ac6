"""Fairness over time, audited as a sales-ops lead would: weighted shares, ties, joiners, returns from time
off, caps on the rep's local day, fairness-period boundaries, cancellations, group roles, ranked order and
round robin's fallback. Pure-core tests first (no database), then tests through the booking services."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from core_oracle import ALL_DAY, at, member, rep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.core import (
    Interval,
    MeetingSpec,
    PoolSpec,
    assign,
    next_up_order,
    offered_slots,
)

NOW = at(2026, 3, 16, 8)  # Monday
MEETING = MeetingSpec(duration_minutes=30, slot_interval_minutes=30, horizon_days=60)


def rotation(weights, n, strategy="round_robin"):
    """Book ``n`` consecutive half-hours through ``strategy`` with always-free reps of ``weights``; the
    sequence of rep ids that got them (the ledger updated after each, as the database does)."""
    members = [member(rep(i + 1, hours=ALL_DAY), weight=w) for i, w in enumerate(weights)]
    out = []
    for k in range(n):
        start = NOW + timedelta(hours=1, minutes=30 * k)
        (host,) = assign(PoolSpec(strategy, tuple(members)), MEETING, now=NOW, start=start).hosts
        out.append(host.rep_id)
        members = [
            replace(m, count=m.count + 1, last_assigned=start) if m.rep_id == host.rep_id else m
            for m in members
        ]
    return out


# --------------------------------------------------------------------------------------------------------
# Core: weighted shares and ties
# --------------------------------------------------------------------------------------------------------


def test_weights_2_1_1_first_available_every_prefix_within_one():
    seq = rotation([2.0, 1.0, 1.0], 400, "first_available")
    shares = [0.5, 0.25, 0.25]
    for n in range(1, len(seq) + 1):
        got = Counter(seq[:n])
        for i, s in enumerate(shares):
            assert abs(got[i + 1] - s * n) <= 1, (n, got)
    assert Counter(seq) == {1: 200, 2: 100, 3: 100}


def test_equal_load_tie_goes_to_the_longest_waiting_not_the_lowest_id():
    """Equal loads: the rep who waited longest is next, whatever their id or rank."""
    t = at(2026, 3, 10, 9)
    members = [
        member(1, count=2, last_assigned=t, rank=0),
        member(2, count=2, last_assigned=t - timedelta(hours=1), rank=5),
        member(3, count=2, last_assigned=t - timedelta(minutes=30), rank=1),
    ]
    assert [m.rep_id for m in next_up_order(members)] == [2, 3, 1]


def test_part_timer_weights_0_3_and_0_9_break_ties_by_longest_waiting():
    """A 1:3 split typed as weights 0.3 (part-timer) and 0.9 (both inside the documented 0.01-1000) must
    route exactly as weights 1 and 3: the loads count / weight are the same numbers, and on equal loads the
    rep who waited longest is next (routing/core/README.md "Next-up order"). After four bookings the counts
    are 1 and 3: both loads are 10/3 and rep 1 has waited longest, so booking 5 is rep 1's. In floating
    point 1/0.3 = 3.3333333333333335 > 3/0.9 = 3.333333333333333: compared raw, rep 2 got a 4th booking in
    a row and rep 1 waited one turn more at every such tie (loads compare to 9 decimals now)."""
    exact, typed = rotation([1, 3], 12), rotation([0.3, 0.9], 12)
    assert exact[:5] == [1, 2, 2, 2, 1]
    assert typed == exact, f"weights 0.3/0.9 give {typed[:6]}, weights 1/3 give {exact[:6]}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    weights=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    scale=st.sampled_from([0.1, 0.3, 0.7, 1.1, 0.03, 1.7]),
)
def test_weights_scaled_by_a_constant_route_identically(weights, scale):
    """Property: multiplying every weight by one constant changes no load comparison, so no assignment."""
    a = rotation(weights, 30)
    b = rotation([round(w * scale, 2) for w in weights], 30)  # as an admin would type them
    assert a == b, (weights, scale)


# --------------------------------------------------------------------------------------------------------
# Through the database: booking_create / booking_cancel / outcomes and the ledger
# --------------------------------------------------------------------------------------------------------

UTC = dt.UTC


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def quiet(settings):
    from django.core.cache import cache

    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BASE_URL = "https://book.example.com"
    cache.clear()
    yield
    cache.clear()


def book(meeting_type, start, now):
    from booking.models import Booking
    from booking.services import booking_create

    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="UTC", now=now
    ).body
    return Booking.objects.get(pk=body["id"]), body["manage_token"]


def hosts_of(booking) -> list[int]:
    return sorted(h.rep_id for h in booking.hosts.filter(active=True))


def standing(pool, now) -> dict[int, float]:
    from routing.ledger import member_count, pool_ledger
    from routing.models import PoolMember

    members = list(PoolMember.objects.filter(pool=pool))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=now)
    return {m.rep_id: member_count(m, ledger) for m in members}


@pytest.mark.django_db
def test_db_weights_2_1_1_converge_with_every_prefix_within_one(quiet):
    from routing.models import PoolMember
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    reps = [make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben", "Cy")]
    pool = make_pool("first_available", reps, fairness_period="month")
    for r, w in zip(reps, (2.0, 1.0, 1.0), strict=True):
        PoolMember.objects.filter(pool=pool, rep=r).update(weight=w)
    meeting_type = make_meeting_type(pool, horizon_days=60)
    got: Counter = Counter()
    now = utc(2026, 3, 2, 6)
    for k in range(40):
        start = utc(2026, 3, 3 + k // 20, 8) + timedelta(minutes=30 * (k % 20))
        booking, _ = book(meeting_type, start, now + timedelta(minutes=k))
        got.update(hosts_of(booking))
        n = k + 1
        for r, share in zip(reps, (0.5, 0.25, 0.25), strict=True):
            assert abs(got[r.pk] - share * n) <= 1, (n, {x.name: got[x.pk] for x in reps})
    assert [got[r.pk] for r in reps] == [20, 10, 10]


@pytest.mark.django_db
@pytest.mark.parametrize("cap_on", ["rep", "member"])
def test_db_daily_cap_counts_the_reps_local_day_not_the_utc_day(quiet, cap_on):
    """Los Angeles rep with a cap of 2 a day, preferred (rank 0) in a ranked pool. Monday 15:30 and 16:00
    local (23:30 Mon and 00:00 Tue UTC) fill their Monday; Monday 16:30 local must go to the fallback rep,
    Tuesday 09:00 local (17:00 UTC, the same UTC day as the two before) to the LA rep again."""
    from routing.models import PoolMember
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    la = make_rep("LA", tz="America/Los_Angeles", hours=(9, 17), days=range(7))
    other = make_rep("Other", tz="America/Los_Angeles", hours=(9, 17), days=range(7))
    pool = make_pool("ranked", [la, other], fairness_period="month")
    if cap_on == "rep":
        la.daily_cap = 2
        la.save()
    else:
        PoolMember.objects.filter(pool=pool, rep=la).update(daily_cap=2)
    meeting_type = make_meeting_type(pool, horizon_days=30)
    now = utc(2026, 2, 1, 12)
    first, _ = book(meeting_type, utc(2026, 2, 2, 23, 30), now)
    second, _ = book(meeting_type, utc(2026, 2, 3, 0, 0), now)
    assert hosts_of(first) == hosts_of(second) == [la.pk]
    third, _ = book(meeting_type, utc(2026, 2, 3, 0, 30), now)
    assert hosts_of(third) == [other.pk], "the LA rep's Monday (local) is full"
    fourth, _ = book(meeting_type, utc(2026, 2, 3, 17, 0), now)
    assert hosts_of(fourth) == [la.pk], "Tuesday (local) is a new day for the LA rep"


@pytest.mark.django_db
def test_db_week_period_boundary_is_monday_00_00_utc(quiet):
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("first_available", [ana, ben], fairness_period="week")
    meeting_type = make_meeting_type(pool, horizon_days=30, minimum_notice_minutes=0)
    late_sunday = utc(2026, 3, 8, 23, 59)
    booking, _ = book(meeting_type, utc(2026, 3, 10, 9), late_sunday)
    assert hosts_of(booking) == [ana.pk]
    assert standing(pool, utc(2026, 3, 8, 23, 59, 30)) == {ana.pk: 1, ben.pk: 0}
    assert standing(pool, utc(2026, 3, 9, 0, 0, 0)) == {ana.pk: 0, ben.pk: 0}
    monday = utc(2026, 3, 9, 0, 1)
    booking, _ = book(meeting_type, utc(2026, 3, 10, 10), monday)
    assert hosts_of(booking) == [ben.pk]  # equal loads: Ben has waited longest
    assert standing(pool, utc(2026, 3, 15, 23, 59)) == {ana.pk: 0, ben.pk: 1}


@pytest.mark.django_db
@pytest.mark.parametrize("counts", [False, True])
def test_db_cancellation_gives_credit_back_exactly_once_per_pool_setting(quiet, counts):
    from booking.services import booking_cancel
    from routing.models import LedgerEntry
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month", count_cancellations=counts)
    meeting_type = make_meeting_type(pool, horizon_days=30)
    now = utc(2026, 3, 2, 6)
    booking, token = book(meeting_type, utc(2026, 3, 3, 9), now)
    assert standing(pool, now) == {ana.pk: 1, ben.pk: 0}
    booking_cancel(token=token, now=now + timedelta(minutes=5))
    assert standing(pool, now + timedelta(minutes=6)) == {ana.pk: 1 if counts else 0, ben.pk: 0}
    credited = LedgerEntry.objects.filter(pool=pool, kind="credited").count()
    assert credited == (0 if counts else 1)
    # and the next booking: equal loads without counting; Ana keeps her credit when counting
    nxt, _ = book(meeting_type, utc(2026, 3, 3, 10), now + timedelta(minutes=10))
    assert hosts_of(nxt) == [ben.pk]


@pytest.mark.django_db
def test_db_no_show_credit_and_its_correction_move_the_count_once_each(quiet):
    from booking.services import booking_outcome_record
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=30)
    now = utc(2026, 3, 2, 6)
    booking, _ = book(meeting_type, utc(2026, 3, 3, 9), now)
    later = utc(2026, 3, 3, 12)
    for kind, expected in [("no_show", 0), ("no_show", 0), ("held", 1), ("won", 1), ("no_show", 0)]:
        booking_outcome_record(booking=booking, kind=kind, amount="10" if kind == "won" else None, now=later)
        assert standing(pool, later)[ana.pk] == expected, kind


@pytest.mark.django_db
def test_db_joiner_mid_period_with_weight_2_is_not_flooded(quiet):
    """Ana and Ben (weight 1) hosted 4 each this month; Cy joins with weight 2 (pool_member_join: at the mean
    load, 4 x 2 = 8). The next 8 bookings go 4/2/2, not 8 to Cy."""
    from routing.models import PoolMember
    from routing.services import pool_member_join
    from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

    ana, ben, cy = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben", "Cy"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    bulk_bookings(meeting_type, [ana, ben], [utc(2026, 3, 2, 9) + timedelta(hours=i) for i in range(8)])
    now = utc(2026, 3, 10, 6)
    with time_machine.travel(now, tick=False):
        member = PoolMember.objects.create(pool=pool, rep=cy, weight=2.0)
        pool_member_join(member, now=now)
    got: Counter = Counter()
    for k in range(8):
        booking, _ = book(
            meeting_type, utc(2026, 3, 11, 9) + timedelta(minutes=30 * k), now + timedelta(minutes=k)
        )
        got.update(hosts_of(booking))
    assert (got[cy.pk], got[ana.pk], got[ben.pk]) == (4, 2, 2)


@pytest.mark.django_db
def test_db_rep_back_from_time_off_catches_up_exactly_their_deficit(quiet):
    """Documented behaviour (count = bookings this period; only joiners and reps/members made active again
    start at the mean load): a rep back from time off is next up until level with the others, and no
    further. Ana is off Tue-Thu while Ben and Cy take 6 bookings each; back on Friday, Ana takes the next 6
    (her deficit), then the three alternate."""
    from calendars.models import TimeOff
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben, cy = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben", "Cy"))
    pool = make_pool("first_available", [ana, ben, cy], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    TimeOff.objects.create(rep=ana, start=utc(2026, 3, 3), end=utc(2026, 3, 6))
    now = utc(2026, 3, 2, 6)
    seq = []
    for k in range(12):
        booking, _ = book(
            meeting_type, utc(2026, 3, 4, 9) + timedelta(minutes=30 * k), now + timedelta(minutes=k)
        )
        seq += hosts_of(booking)
    assert Counter(seq) == {ben.pk: 6, cy.pk: 6}
    for k in range(9):
        when = now + timedelta(hours=1, minutes=k)
        booking, _ = book(meeting_type, utc(2026, 3, 6, 9) + timedelta(minutes=30 * k), when)
        seq += hosts_of(booking)
    assert seq[12:18] == [ana.pk] * 6
    assert sorted(seq[18:21]) == sorted([ana.pk, ben.pk, cy.pk])


@pytest.mark.django_db
def test_db_group_pool_rotates_each_role_on_its_own(quiet):
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    reps = [make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("A1", "A2", "S1", "S2", "S3")]
    roles = ["ae", "ae", "se", "se", "se"]
    pool = make_pool("group", reps, roles=roles, fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    now = utc(2026, 3, 2, 6)
    seats: dict[str, Counter] = {"ae": Counter(), "se": Counter()}
    for k in range(12):
        booking, _ = book(
            meeting_type, utc(2026, 3, 3, 8) + timedelta(minutes=30 * k), now + timedelta(minutes=k)
        )
        for h in booking.hosts.filter(active=True):
            seats[h.role][h.rep_id] += 1
        for role, c in seats.items():
            role_reps = [r.pk for r, x in zip(reps, roles, strict=True) if x == role]
            assert max(c[r] for r in role_reps) - min(c[r] for r in role_reps) <= 1, (k, role, dict(c))
    assert sorted(seats["ae"].values()) == [6, 6]
    assert sorted(seats["se"].values()) == [4, 4, 4]


@pytest.mark.django_db
def test_db_round_robin_falls_back_only_when_the_next_up_rep_has_no_slot_in_the_horizon(quiet):
    """Documented (routing/core/README.md): round robin offers the slots of the first rep in next-up order
    with ANY free slot in the horizon; a window where that rep has none offers nothing."""
    from booking.selectors import slots_in_window
    from calendars.models import TimeOff
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(9, 12), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("round_robin", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=14, minimum_notice_minutes=0)
    now = utc(2026, 3, 2, 6)
    window = Interval(utc(2026, 3, 3), utc(2026, 3, 4))
    # Ana (next up: rank 0) away this week only: this week offers nothing
    off = TimeOff.objects.create(rep=ana, start=utc(2026, 3, 2), end=utc(2026, 3, 9))
    assert slots_in_window(meeting_type, window, now=now) == []
    # Ana away for the whole horizon: Ben's slots are offered, and the booking goes to Ben
    off.end = utc(2026, 4, 1)
    off.save()
    slots = slots_in_window(meeting_type, window, now=now)
    assert slots and slots[0] == utc(2026, 3, 3, 9)
    booking, _ = book(meeting_type, slots[0], now)
    assert hosts_of(booking) == [ben.pk]


# --------------------------------------------------------------------------------------------------------
# Core: ranked order, round robin's offer and caps on the local day
# --------------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(busy=st.lists(st.sets(st.integers(0, 7), max_size=8), min_size=3, max_size=3), k=st.integers(0, 7))
def test_ranked_never_skips_a_free_higher_ranked_rep(busy, k):
    base = at(2026, 3, 16, 9)
    members = []
    for i, slots in enumerate(busy):
        intervals = tuple(
            Interval(base + timedelta(minutes=30 * s), base + timedelta(minutes=30 * s + 30)) for s in slots
        )
        members.append(member(rep(i + 1, busy=intervals), rank=2 - i, count=i * 3))
    start = base + timedelta(minutes=30 * k)
    free = [m for m in members if not any(iv.start <= start < iv.end for iv in m.rep.busy)]
    if not free:
        return
    (host,) = assign(
        PoolSpec("ranked", tuple(members)), MEETING, now=NOW - timedelta(days=1), start=start
    ).hosts
    assert host.rep_id == min(free, key=lambda m: m.rank).rep_id


def test_round_robin_offers_only_the_next_up_reps_slots():
    ana = member(rep(1, hours=ALL_DAY), count=3)
    ben = member(rep(2, hours=ALL_DAY), count=1)
    window = Interval(at(2026, 3, 16, 10), at(2026, 3, 16, 12))
    free_ben = (Interval(at(2026, 3, 16, 10), at(2026, 3, 16, 11)),)
    ben = replace(ben, rep=replace(ben.rep, busy=free_ben))
    offered = offered_slots(PoolSpec("round_robin", (ana, ben)), MEETING, now=NOW, window=window)
    assert offered == [at(2026, 3, 16, 11), at(2026, 3, 16, 11, 30)]


@pytest.mark.django_db
@pytest.mark.parametrize("period", ["day", "week", "month", "rolling_30d", "never"])
def test_db_period_counts_match_a_brute_force_count_at_many_instants(quiet, period):
    """Host rows assigned every 7 h 13 min over 80 days, alternating between two reps; at instants around
    every boundary kind the ledger's count equals a plain count of assigned_at >= the period start (UTC)."""
    from routing.ledger import fairness_period_start
    from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(0, 0), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("first_available", [ana, ben], fairness_period=period)
    meeting_type = make_meeting_type(pool, horizon_days=60)
    first = utc(2026, 1, 1, 0, 7)
    starts = [first + timedelta(minutes=433 * i) for i in range(266)]
    bulk_bookings(meeting_type, [ana, ben], starts)
    instants = [
        utc(2026, 2, 1, 0, 0),
        utc(2026, 2, 28, 23, 59, 59),
        utc(2026, 3, 1),
        utc(2026, 3, 2, 0, 0, 1),
        utc(2026, 3, 8, 23, 59),
        utc(2026, 3, 9),
        utc(2026, 3, 15, 12, 34),
        utc(2026, 3, 21, 7, 7),
    ]
    instants += [
        s + timedelta(days=30) + d for s in starts[100:110] for d in (timedelta(0), timedelta(seconds=1))
    ]
    for now in instants:
        since = fairness_period_start(pool, now=now)
        expect = {r.pk: 0 for r in (ana, ben)}
        for i, s in enumerate(starts):
            if since is None or s >= since:  # (rows assigned after ``now`` only exist in this history)
                expect[(ana, ben)[i % 2].pk] += 1
        assert standing(pool, now) == expect, (period, now)


@pytest.mark.django_db
def test_db_part_timer_weights_0_3_and_0_9_tie_goes_to_the_longest_waiting(quiet):
    """The float tie through the booking service: members weighted 0.3 and 0.9 (a 1:3 split). After four
    bookings (Ana 1, Ben 3, equal loads 10/3) Ana has waited longest and gets booking 5 (Ben got it)."""
    from routing.models import PoolMember
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana, ben = (make_rep(n, tz="UTC", hours=(8, 20), days=range(7)) for n in ("Ana", "Ben"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    PoolMember.objects.filter(pool=pool, rep=ana).update(weight=0.3)
    PoolMember.objects.filter(pool=pool, rep=ben).update(weight=0.9)
    meeting_type = make_meeting_type(pool, horizon_days=60)
    now = utc(2026, 3, 2, 6)
    seq = []
    for k in range(5):
        booking, _ = book(
            meeting_type, utc(2026, 3, 3, 9) + timedelta(minutes=30 * k), now + timedelta(minutes=k)
        )
        seq += hosts_of(booking)
    names = {ana.pk: "Ana", ben.pk: "Ben"}
    assert [names[r] for r in seq] == ["Ana", "Ben", "Ben", "Ben", "Ana"], [names[r] for r in seq]
