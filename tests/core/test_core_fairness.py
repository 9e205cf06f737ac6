"""The fairness ledger: next-up order, mean load and long-run shares under round robin."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core_oracle import ALL_DAY, at, member, rep

from routing.core import MeetingSpec, PoolSpec, assign, mean_load, next_up_order

NOW = at(2026, 3, 16, 8)
MEETING = MeetingSpec(duration_minutes=30, slot_interval_minutes=30, horizon_days=60)


def ids(members):
    return [m.rep_id for m in members]


def test_next_up_order_keys_in_sequence():
    t = at(2026, 3, 10)
    members = [
        member(1, count=4, weight=2.0, last_assigned=t),  # load 2
        member(2, count=1, last_assigned=t),  # load 1, assigned at t
        member(3, count=1, last_assigned=t - timedelta(days=1)),  # load 1, waited longer
        member(4, count=1),  # load 1, never assigned: first among load 1
        member(5, count=1, last_assigned=t, rank=0),  # same as 2 but…
        member(6, count=0.5, weight=0.5, rank=3),  # load 1, never assigned, rank 3
    ]
    members[1] = replace(members[1], rank=1)
    assert ids(next_up_order(members)) == [4, 6, 3, 5, 2, 1]
    assert ids(next_up_order(reversed(members))) == [4, 6, 3, 5, 2, 1]


def test_rep_id_breaks_the_last_tie():
    assert ids(next_up_order([member(9), member(3), member(5)])) == [3, 5, 9]


def test_mean_load_of_active_members():
    members = [
        member(1, count=2),
        member(2, count=6, weight=2),
        member(3, count=100, active=False),
        member(rep(4, active=False), count=50),
    ]
    assert mean_load(members) == 2.5
    assert mean_load([]) == 0.0


def simulate(weights, bookings):
    """Book ``bookings`` times through round robin with always-free reps; yield counts after each booking."""
    members = [member(rep(i + 1, hours=ALL_DAY), weight=w) for i, w in enumerate(weights)]
    for k in range(bookings):
        start = NOW + timedelta(hours=1, minutes=30 * k)
        (host,) = assign(PoolSpec("round_robin", tuple(members)), MEETING, now=NOW, start=start).hosts
        members = [
            replace(m, count=m.count + 1, last_assigned=start) if m.rep_id == host.rep_id else m
            for m in members
        ]
        yield [m.count for m in members]


def test_equal_weights_stay_within_one_booking_at_every_step():
    for counts in simulate([1.0] * 5, 1000):
        assert max(counts) - min(counts) <= 1
    assert counts == [200] * 5


def test_weights_2_1_1_converge_to_50_25_25():
    # bound checked at EVERY step n: |count_i − share_i · n| ≤ 1 for every rep i
    shares = [0.5, 0.25, 0.25]
    worst = 0.0
    for n, counts in enumerate(simulate([2.0, 1.0, 1.0], 1000), start=1):
        worst = max(worst, *(abs(c - s * n) for c, s in zip(counts, shares, strict=True)))
        assert worst <= 1
    assert counts == [500, 250, 250]
    # the bound is tight: after 6 bookings the order has been A, B, C, A, B, C, so A holds 2 of its 3
    assert worst == 1.0
