"""Benchmark of the routing simulator: 10,000 synthetic leads over a 50-rep pool (target: under 30 s).

Run from the repository root:  python bench/bench_simulator.py

The pool is built like bench_core's S1 (50 reps in New York, Berlin and Kolkata, Mon–Fri 09:00–17:00 local,
~6 random busy events per rep per working day, seeded) with a 30-minute meeting on a 15-minute grid, 4 h
notice and a 30-day horizon. A seeded Poisson stream brings 10,000 leads over 30 days; each lead gets its
first offered slot searched (wait), one of the first five offered slots taken and the host assigned by the
routing core, with the fairness ledger, busy times and caps kept in memory (``simulate``). No
database is used: the policy is built in memory, which is what the simulator works on after loading.
"""

from __future__ import annotations

import os
import random
import sys
import time as clock
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")  # settings only (no database is used); DEBUG=1 avoids needing SECRET_KEY

import django  # noqa: E402

django.setup()

from insights.simulator import Policy, simulate, synthetic_leads  # noqa: E402
from routing.core import Interval, MeetingSpec, MemberState, RepSchedule  # noqa: E402

REPS = 50
LEADS = 10_000
DAYS = 30
TARGET_S = 30.0
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata")
START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
MEETING = MeetingSpec(
    duration_minutes=30, slot_interval_minutes=15, minimum_notice_minutes=240, horizon_days=30
)
WORKDAY = ((time(9), time(17)),)


def make_rep(rep_id: int, rng: random.Random) -> RepSchedule:
    zone_name = ZONES[rep_id % len(ZONES)]
    zone = ZoneInfo(zone_name)
    busy = []
    first = START.astimezone(zone).date()
    for offset in range(DAYS + MEETING.horizon_days + 2):
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
        weekly_hours={d: WORKDAY for d in range(5)},
        busy=tuple(busy),
        name=f"Rep {rep_id}",
    )


def make_policy(seed: int) -> Policy:
    rng = random.Random(seed)
    members = tuple(
        MemberState(rep=make_rep(i + 1, rng), rank=i, weight=rng.choice((1.0, 1.0, 2.0)), daily_cap=12)
        for i in range(REPS)
    )
    return Policy(
        label="bench",
        strategy="first_available",
        group_order="next_up",
        fairness_period="week",
        members=members,
        names={m.rep_id: m.rep.name for m in members},
    )


def main() -> int:
    policy = make_policy(seed=1)
    # the Poisson stream runs a little longer than 30 days so that it surely holds 10,000 leads; cut there
    rate = LEADS / (DAYS * 24)
    leads = synthetic_leads(MEETING, start=START, hours=int(DAYS * 24 * 1.1), rate_per_hour=rate, seed=2)
    leads = leads[:LEADS]
    assert len(leads) == LEADS, len(leads)
    t0 = clock.perf_counter()
    outcome = simulate(policy, leads)
    elapsed = clock.perf_counter() - t0
    summary = outcome.summary()
    ok = elapsed <= TARGET_S
    print(
        f"routing simulator benchmark: {len(leads)} synthetic leads, {REPS}-rep first_available pool, "
        f"{DAYS} days"
    )
    print(
        f"assigned {summary['assigned']}, no slot {summary['no_slot']}, cap hits {summary['cap_hits']}, "
        f"gini {summary['gini']:.3f}, median wait {summary['median_wait_minutes']:.0f} min, "
        f"p90 {summary['p90_wait_minutes']:.0f} min"
    )
    print(
        f"time {elapsed:.1f} s ({1000 * elapsed / len(leads):.2f} ms per lead)  target <= {TARGET_S:.0f} s  "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
