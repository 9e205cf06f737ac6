"""Benchmark of the pure routing core (no database, no Django).

Run from the repository root:  python bench/bench_core.py

Scenarios (all with a seeded random generator, so figures are comparable between runs):

* S1 – 50 reps in America/New_York, Europe/Berlin and Asia/Kolkata, Mon–Fri 09:00–17:00 local, ~6 random busy
  events per rep per working day, 30-minute meetings on a 15-minute grid, 30-day horizon, ``first_available``.
* S2 – the same with 500 reps (target: at most 12 × S1, i.e. linear).
* S3 – a ``group`` pool of 10 AEs and 5 SEs built the same way.

For each scenario it prints the median over RUNS runs of ``offered_slots`` over the whole horizon and of one
``assign`` (at the middle offered slot), plus the first ("cold": zone caches cleared) run. Times are this
process's CPU time (``time.process_time``), so a busy machine does not distort the targets; the median
wall-clock time of ``offered_slots`` is printed beside it.
"""

from __future__ import annotations

import random
import statistics
import sys
import time as clock
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.core import (  # noqa: E402
    Interval,
    MeetingSpec,
    MemberState,
    PoolSpec,
    RepSchedule,
    assign,
    availability,  # noqa: E402
    localtime,
    offered_slots,
)

RUNS = 9
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata")
NOW = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # spans the US and EU spring-forward transitions
MEETING = MeetingSpec(
    duration_minutes=30, slot_interval_minutes=15, minimum_notice_minutes=240, horizon_days=30
)
WORKDAY = ((time(9), time(17)),)
TARGET_MS = 50.0
TARGET_RATIO = 12.0


def make_rep(rep_id: int, rng: random.Random) -> RepSchedule:
    zone_name = ZONES[rep_id % len(ZONES)]
    zone = ZoneInfo(zone_name)
    busy = []
    first = NOW.astimezone(zone).date()
    for offset in range(MEETING.horizon_days + 2):
        day = first + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for _ in range(6):
            minute = rng.randrange(8 * 60, 18 * 60, 5)
            start = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
            length = timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
            busy.append(Interval(start.astimezone(UTC), (start + length).astimezone(UTC)))
    return RepSchedule(
        rep_id=rep_id,
        timezone=zone_name,
        weekly_hours={weekday: WORKDAY for weekday in range(5)},
        busy=tuple(busy),
        name=f"Rep {rep_id}",
    )


def make_member(rep: RepSchedule, rng: random.Random, role: str = "") -> MemberState:
    last = NOW - timedelta(minutes=rng.randrange(1, 10_000)) if rng.random() < 0.9 else None
    count = float(rng.randrange(20))
    return MemberState(rep=rep, rank=rng.randrange(5), count=count, last_assigned=last, role=role)


def first_available_pool(n: int, seed: int) -> PoolSpec:
    rng = random.Random(seed)
    return PoolSpec("first_available", tuple(make_member(make_rep(i + 1, rng), rng) for i in range(n)))


def group_pool(seed: int) -> PoolSpec:
    rng = random.Random(seed)
    members = [make_member(make_rep(i + 1, rng), rng, "ae" if i < 10 else "se") for i in range(15)]
    return PoolSpec("group", tuple(members))


def timed(fn) -> tuple[float, float, object]:
    """Wall and CPU milliseconds of ``fn()``: this process's CPU time is what the targets use, as it does
    not count the time the machine's other work takes the core away (the wall figure is printed too)."""
    t0, c0 = clock.perf_counter(), clock.process_time()
    result = fn()
    return (clock.perf_counter() - t0) * 1000, (clock.process_time() - c0) * 1000, result


def measure(pool: PoolSpec) -> dict:
    window = Interval(NOW, NOW + timedelta(days=MEETING.horizon_days))
    localtime.local_to_epoch.cache_clear()
    localtime.offset_segments.cache_clear()
    offer_ms, offer_cpu, assign_ms, slots = [], [], [], []
    for _ in range(RUNS):
        availability.spans_cache_clear()  # a slot page loads its busy rows afresh: no cache between runs
        ms, cpu, slots = timed(lambda: offered_slots(pool, MEETING, now=NOW, window=window))
        offer_ms.append(ms)
        offer_cpu.append(cpu)
    start = slots[len(slots) // 2]
    for _ in range(RUNS):
        availability.spans_cache_clear()
        _ms, cpu, _result = timed(lambda: assign(pool, MEETING, now=NOW, start=start))
        assign_ms.append(cpu)
    return {
        "offer": statistics.median(offer_cpu),
        "offer_wall": statistics.median(offer_ms),
        "offer_cold": offer_cpu[0],
        "assign": statistics.median(assign_ms),
        "slots": len(slots),
        "busy": sum(len(m.rep.busy) for m in pool.members),
    }


def interleaved_ratio(small: PoolSpec, large: PoolSpec) -> float:
    """Median over RUNS rounds of large/small ``offered_slots`` time, the two timed back to back in each
    round, so a slow spell of the (virtual) machine touches both sides of a ratio alike."""
    window = Interval(NOW, NOW + timedelta(days=MEETING.horizon_days))
    ratios = []
    for _ in range(RUNS):
        times = []
        for pool in (small, large):
            availability.spans_cache_clear()
            times.append(timed(lambda pool=pool: offered_slots(pool, MEETING, now=NOW, window=window))[1])
        ratios.append(times[1] / times[0])
    return statistics.median(ratios)


def main() -> int:
    s1, s2 = first_available_pool(50, seed=1), first_available_pool(500, seed=2)
    results = {"S1": measure(s1), "S2": measure(s2), "S3": measure(group_pool(seed=3))}
    ratio = interleaved_ratio(s1, s2)
    targets = {
        "S1": (f"<= {TARGET_MS:.0f} ms", results["S1"]["offer"] <= TARGET_MS),
        "S2": (f"<= {TARGET_RATIO:.0f} x S1", ratio <= TARGET_RATIO),
        "S3": (f"<= {TARGET_MS:.0f} ms", results["S3"]["offer"] <= TARGET_MS),
    }
    labels = {"S1": "50 reps, first_available", "S2": "500 reps, first_available", "S3": "group 10 AE + 5 SE"}
    print(f"routing core benchmark: median of {RUNS} runs, 30-day horizon, 30-min meetings on a 15-min grid")
    print("(offer, cold and assign: CPU ms of this process; wall: median wall-clock ms)")
    header = f"{'':3} {'scenario':26} {'busy':>6} {'slots':>6} {'offer ms':>9} {'wall ms':>8} {'cold ms':>8}"
    header += f" {'assign ms':>10}  {'target':12} result"
    print(header)
    print("-" * len(header))
    for key, r in results.items():
        target, ok = targets[key]
        print(
            f"{key:3} {labels[key]:26} {r['busy']:>6} {r['slots']:>6} {r['offer']:>9.2f}"
            f" {r['offer_wall']:>8.2f} {r['offer_cold']:>8.2f} {r['assign']:>10.3f}"
            f"  {target:12} {'PASS' if ok else 'FAIL'}"
        )
    print(f"S2/S1 offered_slots ratio: {ratio:.2f} (median of {RUNS} back-to-back pairs; linear would be 10)")
    return 0 if all(ok for _, ok in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
