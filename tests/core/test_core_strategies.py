"""Each strategy, including the worked examples written out in routing/core/README.md."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from core_oracle import at, member, rep

from routing.core import (
    REGISTRY,
    STRATEGY_CHOICES,
    Host,
    Interval,
    MeetingSpec,
    NoHostAvailable,
    PoolSpec,
    assign,
    offered_slots,
    register,
)
from routing.core.strategies import Strategy

# ---- the worked example (README): Monday 2026-03-16, Europe/London (= UTC in March), Mon–Fri 09–17
LON = "Europe/London"
NOW = at(2026, 3, 16, 8)
MEETING = MeetingSpec(
    duration_minutes=30, slot_interval_minutes=30, minimum_notice_minutes=60, horizon_days=14
)
WINDOW = Interval(at(2026, 3, 16, 9), at(2026, 3, 16, 12))


def busy(h0, m0, h1, m1):
    return (Interval(at(2026, 3, 16, h0, m0), at(2026, 3, 16, h1, m1)),)


ANA = member(
    rep(1, LON, name="Ana", busy=busy(9, 0, 10, 30)),
    count=3,
    rank=2,
    role="ae",
    last_assigned=at(2026, 3, 13, 15),
)
BEN = member(
    rep(2, LON, name="Ben", busy=busy(10, 0, 12, 0)),
    count=2,
    rank=1,
    role="ae",
    last_assigned=at(2026, 3, 12, 10),
)
CY = member(
    rep(3, LON, name="Cy", busy=busy(9, 0, 11, 0)),
    count=2,
    rank=0,
    role="se",
    last_assigned=at(2026, 3, 13, 9),
)
DEE = member(rep(4, LON, name="Dee", busy=busy(11, 0, 12, 0)), count=0, role="se")


def pool(strategy, *members, **kw):
    return PoolSpec(strategy=strategy, members=members or (ANA, BEN, CY), **kw)


def offered(p, window=WINDOW):
    return [s.strftime("%H:%M") for s in offered_slots(p, MEETING, now=NOW, window=window)]


def booked(p, h, mi):
    return assign(p, MEETING, now=NOW, start=at(2026, 3, 16, h, mi))


def outcomes(record):
    return [(c["name"], c["outcome"], c["reason"]) for c in record["candidates"]]


def test_worked_example_first_available():
    p = pool("first_available")
    assert offered(p) == ["09:00", "09:30", "10:30", "11:00", "11:30"]  # 10:00: everybody busy
    a = booked(p, 11, 0)
    assert a.hosts == (Host(3, "se"),)
    assert outcomes(a.record) == [
        ("Ben", "skipped", "busy"),
        ("Cy", "chosen", None),
        ("Ana", "not_needed", None),
    ]
    assert a.record["start"] == "2026-03-16T11:00:00Z"
    assert a.record["candidates"][1] == {
        "rep_id": 3,
        "name": "Cy",
        "role": "se",
        "count": 2.0,
        "weight": 1.0,
        "load": 2.0,
        "last_assigned": "2026-03-13T09:00:00Z",
        "rank": 0,
        "outcome": "chosen",
        "reason": None,
    }
    assert a.record["hosts"] == [{"rep_id": 3, "role": "se"}]
    json.dumps(a.record)


def test_worked_example_round_robin():
    p = pool("round_robin")
    assert offered(p) == ["09:00", "09:30"]  # only Ben's slots: Ben is next up
    assert booked(p, 9, 30).hosts == (Host(2, "ae"),)
    # a booking at a time Ben is busy still lands on the next free rep in next-up order
    assert booked(p, 11, 0).hosts == (Host(3, "se"),)


def test_worked_example_ranked():
    p = pool("ranked")
    assert offered(p) == ["09:00", "09:30", "10:30", "11:00", "11:30"]
    assert booked(p, 11, 0).hosts == (Host(3, "se"),)  # Cy has rank 0
    a = booked(p, 10, 30)
    assert a.hosts == (Host(1, "ae"),)
    assert outcomes(a.record) == [
        ("Cy", "skipped", "busy"),
        ("Ben", "skipped", "busy"),
        ("Ana", "chosen", None),
    ]


def test_worked_example_group():
    p = pool("group", ANA, BEN, CY, DEE)
    assert offered(p) == ["09:00", "09:30", "10:30", "11:00", "11:30"]  # 10:00: no AE is free
    a = booked(p, 10, 30)
    assert a.hosts == (Host(1, "ae"), Host(4, "se"))
    assert outcomes(a.record) == [
        ("Ben", "skipped", "busy"),
        ("Ana", "chosen", None),
        ("Dee", "chosen", None),
        ("Cy", "not_needed", "role_filled"),
    ]
    with pytest.raises(NoHostAvailable) as err:
        booked(p, 10, 0)
    assert err.value.code == "slot_unavailable"
    assert err.value.record["hosts"] == []
    # Dee is still chosen for the SE role, but without an AE nobody is booked
    assert outcomes(err.value.record) == [
        ("Ben", "skipped", "busy"),
        ("Ana", "skipped", "busy"),
        ("Dee", "chosen", None),
        ("Cy", "not_needed", "role_filled"),
    ]


# ---- further strategy behaviour


def test_round_robin_empty_window_when_next_up_rep_is_free_only_elsewhere_in_horizon():
    # Ben is next up and free on Tuesday, but busy all Monday morning: Monday's window offers nothing
    ben = replace(BEN, rep=replace(BEN.rep, busy=busy(9, 0, 12, 0)))
    assert offered(pool("round_robin", ANA, ben, CY)) == []
    # if Ben has no free slot in the whole horizon, the next rep in order (Cy) offers instead
    ben_off = replace(ben, active=False)
    assert offered(pool("round_robin", ANA, ben_off, CY)) == ["11:00", "11:30"]


def test_ranked_ties_use_next_up_order():
    a = replace(ANA, rank=0, rep=replace(ANA.rep, busy=()))
    c = replace(CY, rank=0, rep=replace(CY.rep, busy=()))
    assert booked(pool("ranked", a, c), 9, 0).hosts == (Host(3, "se"),)  # Cy has the lower load


def test_group_order_rank_and_fairness_per_role():
    free = {m.rep_id: replace(m, rep=replace(m.rep, busy=())) for m in (ANA, BEN, CY, DEE)}
    by_load = pool("group", *free.values())
    assert booked(by_load, 9, 0).hosts == (Host(2, "ae"), Host(4, "se"))  # Ben, Dee have the lowest load
    free[4] = replace(free[4], rank=5)
    by_rank = pool("group", *free.values(), group_order="rank")
    assert booked(by_rank, 9, 0).hosts == (Host(2, "ae"), Host(3, "se"))  # rank beats load: Cy 0 < Dee 5
    free[4] = replace(free[4], rank=0)
    by_rank = pool("group", *free.values(), group_order="rank")
    assert booked(by_rank, 9, 0).hosts == (Host(2, "ae"), Host(4, "se"))  # equal ranks: Dee's lower load


def test_group_without_members_or_with_an_unstaffed_role_offers_nothing():
    empty = PoolSpec("group", ())
    assert offered(empty) == []
    with pytest.raises(NoHostAvailable):
        booked(empty, 9, 0)
    se_inactive = pool("group", ANA, BEN, replace(CY, active=False), replace(DEE, active=False))
    assert offered(se_inactive) == []


def test_single_host_pools_raise_with_a_record_when_nobody_is_free():
    with pytest.raises(NoHostAvailable) as err:
        booked(pool("first_available"), 10, 0)
    assert [c["reason"] for c in err.value.record["candidates"]] == ["busy", "busy", "busy"]
    assert offered(PoolSpec("first_available", ())) == []


def test_offered_slots_are_sorted_unique_utc_and_inside_the_window():
    p = pool("first_available", ANA, BEN, CY, DEE)
    window = Interval(at(2026, 3, 16, 9, 30), at(2026, 3, 17, 9, 30))
    got = offered_slots(p, MEETING, now=NOW, window=window)
    assert got == sorted(set(got)) and all(s.utcoffset() == timedelta(0) for s in got)
    assert got[0] == window.start and got[-1] < window.end and at(2026, 3, 17, 9) in got


def test_registry_and_choices():
    assert set(REGISTRY) == {"round_robin", "first_available", "ranked", "group"}
    assert dict(STRATEGY_CHOICES)["first_available"] == "First available"
    with pytest.raises(ValueError):
        offered(PoolSpec("nope", (ANA,)))
    with pytest.raises(ValueError):
        register(type(REGISTRY["ranked"]))


def test_a_new_strategy_plugs_in_without_touching_others():
    class LastMember(Strategy):
        key = "last_member"
        label = "Always the last member"

        def offered(self, pool, req, lo, hi):
            from routing.core.availability import free_epochs

            return free_epochs(pool.members[-1], req, lo, hi)

        def choose(self, pool, req, start):
            last = pool.members[-1]
            return [Host(last.rep_id, last.role)], []

    register(LastMember)
    try:
        assert offered(pool("last_member")) == ["11:00", "11:30"]
        assert booked(pool("last_member"), 11, 0).record["strategy"] == "last_member"
    finally:
        del REGISTRY["last_member"]


def test_the_core_imports_no_django():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, routing.core; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
