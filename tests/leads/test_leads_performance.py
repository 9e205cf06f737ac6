"""Performance weighting: factors, shrinkage, strength, floor (property: long-run shares), and the route."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.models import Booking, BookingHost, BookingOutcome
from leads.models import Lead, PoolPerformance
from leads.performance_core import Record, factors, shares
from tests.booking.booking_factories import NOW
from tests.leads.conftest import lead_body


def test_no_outcomes_means_plain_fairness():
    assert factors({1: Record(1.0), 2: Record(2.0)}, strength=1, floor=0) == {1: 1.0, 2: 1.0}


def test_new_member_starts_at_team_rate_and_shrinkage():
    recs = {1: Record(1, 100, 60), 2: Record(1, 100, 20), 3: Record(1, 0, 0), 4: Record(1, 2, 2)}
    f = factors(recs, strength=1, floor=0, prior=10)
    assert f[3] == pytest.approx(1.0)  # new member: team rate
    assert f[1] > f[4] > 1.0 > f[2]  # 2 wins of 2 is shrunk far more than 60 of 100
    assert factors(recs, strength=0, floor=0) == {k: 1.0 for k in recs}  # strength 0: no effect
    half = factors(recs, strength=0.5, floor=0, prior=10)
    assert half[1] - 1 == pytest.approx((f[1] - 1) / 2)


def test_floor_lifts_low_performers():
    recs = {1: Record(1, 200, 150), 2: Record(1, 200, 0), 3: Record(1, 200, 50)}
    f = factors(recs, strength=1, floor=0.8, prior=0)
    share = shares(f)
    assert min(share.values()) >= 0.8 / 3 - 1e-12
    assert share[2] == pytest.approx(0.8 / 3)


def simulate(weights: dict[int, float], steps: int) -> dict[int, float]:
    """The fairness ledger's long run: each lead to the member with the lowest count/weight."""
    counts = dict.fromkeys(weights, 0)
    for _ in range(steps):
        pick = min(weights, key=lambda k: ((counts[k] + 1) / weights[k], k))
        counts[pick] += 1
    return {k: c / steps for k, c in counts.items()}


member = st.tuples(st.floats(0.2, 5), st.integers(0, 300), st.floats(0, 1)).map(
    lambda t: Record(t[0], t[1], int(t[1] * t[2]))
)


@settings(max_examples=60, deadline=None)
@given(
    recs=st.lists(member, min_size=2, max_size=6),
    strength=st.floats(0, 1),
    floor=st.floats(0, 0.95),
    prior=st.floats(0, 30),
)
def test_property_no_long_run_share_under_the_floor(recs, strength, floor, prior):
    records = dict(enumerate(recs))
    f = factors(records, strength=strength, floor=floor, prior=prior)
    fair = shares({k: r.weight for k, r in records.items()})
    effective = {k: records[k].weight * max(f[k], 0.01) for k in records}
    for k, share in shares(effective).items():
        assert share >= floor * fair[k] - 1e-9
    steps = 2000
    for k, share in simulate(effective, steps).items():
        assert share >= floor * fair[k] - len(records) / steps


def outcome(demo, rep, kind, i):
    start = NOW - dt.timedelta(days=3, hours=i)
    booking = Booking.objects.create(
        meeting_type=demo,
        pool=demo.pool,
        start=start,
        end=start + dt.timedelta(minutes=30),
        prospect_name="x",
        prospect_email=f"p{i}@x.com",
        prospect_timezone="UTC",
        manage_token_hash=f"perf-{i}",
        status="completed",
    )
    BookingHost.objects.create(booking=booking, rep=rep, blocked_start=start, blocked_end=booking.end)
    BookingOutcome.objects.create(
        booking=booking,
        kind=kind,
        amount=100 if kind == "won" else None,
        recorded_at=NOW - dt.timedelta(days=1),
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("clock")
def test_route_carries_factors_into_lead_and_booking(api, demo, sales, reps):
    PoolPerformance.objects.create(pool=sales, strength=1.0, floor=0.5, prior_outcomes=0)
    for i in range(4):
        outcome(demo, reps["ana"], "won", i)
        outcome(demo, reps["ben"], "lost", 10 + i)
    data = api.post("/api/v1/meeting-types/demo/route", lead_body(), format="json").json()
    perf = Lead.objects.get().decision["performance"]
    assert perf["outcomes"][str(reps["ana"].pk)] == [4, 4]
    assert perf["factors"][str(reps["ana"].pk)] > 1 > perf["factors"][str(reps["ben"].pk)]
    assert perf["factors"][str(reps["cara"].pk)] == pytest.approx(1.0)
    created = api.post(
        "/api/v1/meeting-types/demo/bookings",
        {
            "start": "2026-03-03T14:00:00+01:00",
            "name": "Pat",
            "email": "pat@acme.io",
            "timezone": "Europe/Berlin",
            "answers": {"size": "51+"},
            "route": data["route"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    booking = Booking.objects.get(pk=created.json()["id"])
    assert booking.decision["route"]["factors"] == perf["factors"]
