"""Replay with the calendars as they were synced (issue 8): a busy row a sync stored in the middle of the
period blocks only leads decided from its ``synced_at``; a row a later sync removed (``BusyHistory``) blocks
only leads decided before its ``removed_at``; rows without ``synced_at`` are known since ever. The pool is
``ranked`` (Ana first whenever she is free), so the calendars alone decide who gets each lead."""

from __future__ import annotations

from dataclasses import replace

import pytest
import time_machine

from booking.models import Booking
from booking.services import booking_create
from calendars.models import BusyHistory, BusyInterval
from insights.selectors import candidate_policy, current_policy, replay_bookings, replay_leads
from insights.services import Synthetic, simulation_run
from insights.simulator import simulate
from routing.core import Interval
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db
T = at(2, 10)  # the sync instant, between the two live bookings


@pytest.fixture
def duo(reps):
    pool = make_pool("ranked", reps[:2], fairness_period="week")
    return make_meeting_type(pool, slug="duo")


def create(meeting_type, start, now, n) -> int:
    with time_machine.travel(now, tick=False):
        result = booking_create(
            meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
            timezone="Europe/Berlin", now=now,
        )  # fmt: skip
    return Booking.objects.get(pk=result.body["id"]).hosts.get().rep_id


def replay(pool, *, as_synced=True):
    bookings = replay_bookings(pool, start=at(2, 0), end=at(9, 0))
    policy = current_policy(pool, start=at(2, 0), end=at(9, 0), replayed=bookings, as_synced=as_synced)
    return policy, replay_leads(bookings, end=at(9, 0))


def candidate_text(pool, reps):
    members = "\n".join(f"      - {{rep: {r.email}, rank: {i}}}" for i, r in enumerate(reps))
    head = f"version: 1\npools:\n  - slug: {pool.slug}\n    name: C\n    strategy: ranked\n"
    return f"{head}    members:\n{members}\n"


def test_busy_row_synced_mid_period_blocks_only_later_leads(duo, reps):
    """Before T Ana takes Tuesday 11:00; at T a sync stores Ana busy on Tuesday and Wednesday 11:00-12:00;
    after T Wednesday 11:00 goes to Ben. Replayed with today's rows throughout, Ana would be busy for the
    first lead too (Ben)."""
    ana, ben = reps[0].pk, reps[1].pk
    first = create(duo, at(3, 11), at(2, 9), 1)
    for day in (3, 4):
        BusyInterval.objects.create(
            rep=reps[0], start=at(day, 11), end=at(day, 12), source="calendar", synced_at=T
        )
    second = create(duo, at(4, 11), at(2, 11), 2)
    assert (first, second) == (ana, ben)

    policy, leads = replay(duo.pool)
    busy = {m.rep_id: m.rep.busy for m in policy.members}
    assert Interval(at(3, 11), at(3, 12)) not in busy[ana] and Interval(at(4, 11), at(4, 12)) not in busy[ana]
    assert sorted(policy.busy_events, key=lambda e: e[2].start) == [
        (T, ana, Interval(at(3, 11), at(3, 12)), True),
        (T, ana, Interval(at(4, 11), at(4, 12)), True),
    ]
    out = simulate(policy, leads)
    assert out.assignments == [(ana,), (ben,)] and out.reproduced == 2
    # the rows never appearing: Ana would take the second lead too (the events are what blocks her)
    assert simulate(replace(policy, busy_events=()), leads).assignments == [(ana,), (ana,)]
    # today's rows for the whole period (as before): the first lead cannot go to Ana
    today, _ = replay(duo.pool, as_synced=False)
    assert today.busy_events == () and simulate(today, leads).assignments[0] == (ben,)

    current, candidate = simulation_run(
        pool=duo.pool, start=at(2, 0), end=at(9, 0), candidate_text=candidate_text(duo.pool, reps[:2])
    )["results"]
    assert current["reproduced"] == 2 and candidate["reproduced"] == 2  # every policy sees the events
    flipped = candidate_policy(
        policy, duo.pool, text=candidate_text(duo.pool, reps[1::-1]), filename="c.yaml"
    )
    assert simulate(flipped, leads).assignments == [(ben,), (ben,)]


def test_lead_at_the_sync_instant_sees_the_row(duo, reps):
    """An event applies before any lead decided at or after its instant."""
    ana, ben = reps[0].pk, reps[1].pk
    create(duo, at(3, 11), at(2, 9), 1)
    BusyInterval.objects.create(rep=reps[0], start=at(4, 11), end=at(4, 12), source="calendar", synced_at=T)
    assert create(duo, at(4, 11), T, 2) == ben
    policy, leads = replay(duo.pool)
    assert simulate(policy, leads).assignments == [(ana,), (ben,)]


def test_row_removed_mid_period_blocks_only_earlier_leads(duo, reps):
    """Ana was busy Wednesday 11:00-12:00 (an old synced row) until a sync removed it at T: the lead before T
    goes to Ben, the lead after T for the same start to Ana (Ben holds the first). Replayed with today's rows
    (the row gone), the first lead would go to Ana and the second to Ben."""
    ana, ben = reps[0].pk, reps[1].pk
    row = BusyInterval.objects.create(
        rep=reps[0], start=at(4, 11), end=at(4, 12), source="calendar", synced_at=at(1, 8)
    )
    first = create(duo, at(4, 11), at(2, 9), 1)
    row.delete()
    BusyHistory.objects.create(
        rep=reps[0], start=at(4, 11), end=at(4, 12), source="calendar", synced_at=at(1, 8), removed_at=T
    )
    second = create(duo, at(4, 11), at(2, 11), 2)
    assert (first, second) == (ben, ana)

    policy, leads = replay(duo.pool)
    busy = {m.rep_id: m.rep.busy for m in policy.members}
    assert Interval(at(4, 11), at(4, 12)) in busy[ana]
    assert policy.busy_events == ((T, ana, Interval(at(4, 11), at(4, 12)), False),)
    out = simulate(policy, leads)
    assert out.assignments == [(ben,), (ana,)] and out.reproduced == 2
    today, _ = replay(duo.pool, as_synced=False)
    assert simulate(today, leads).assignments == [(ana,), (ben,)]
    assert simulation_run(pool=duo.pool, start=at(2, 0), end=at(9, 0))["results"][0]["reproduced"] == 2


def test_rows_without_sync_time_and_synced_before_the_period_are_there_throughout(duo, reps):
    ben = reps[1].pk
    BusyInterval.objects.create(rep=reps[0], start=at(3, 11), end=at(3, 12))  # entered in Baton
    BusyInterval.objects.create(rep=reps[0], start=at(4, 11), end=at(4, 12), source="calendar")  # older
    BusyInterval.objects.create(
        rep=reps[0], start=at(5, 11), end=at(5, 12), source="calendar", synced_at=at(1, 9)
    )
    hosts = [create(duo, at(day, 11), at(2, 9 + day), day) for day in (3, 4, 5)]
    assert hosts == [ben, ben, ben]
    policy, leads = replay(duo.pool)
    assert policy.busy_events == ()
    assert policy == replay(duo.pool, as_synced=False)[0]
    assert simulate(policy, leads).assignments == [(ben,), (ben,), (ben,)]


def test_synthetic_stream_uses_todays_rows(duo, reps, monkeypatch):
    """A synthetic stream is not a replay: the calendars are today's rows throughout (no events)."""
    import insights.services

    BusyInterval.objects.create(rep=reps[0], start=at(3, 8), end=at(3, 16), source="calendar", synced_at=T)
    built = []

    def spy(*args, **kwargs):
        built.append(current_policy(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(insights.services, "current_policy", spy)
    result = simulation_run(pool=duo.pool, start=at(2, 0), synthetic=Synthetic(2, 24, 1, duo))["results"][0]
    assert result["assigned"] == result["leads"] > 0
    assert built[0].busy_events == ()
    assert Interval(at(3, 8), at(3, 16)) in {m.rep_id: m.rep.busy for m in built[0].members}[reps[0].pk]
    simulation_run(pool=duo.pool, start=at(2, 0), end=at(9, 0))  # a replay of the same period: as synced
    assert built[1].busy_events == ((T, reps[0].pk, Interval(at(3, 8), at(3, 16)), True),)


def test_reschedule_after_the_last_lead_sees_rows_synced_before_it(duo, reps):
    """Ana takes the only lead (Tuesday 11:00); at T a sync stores Ana busy Wednesday 11:00-12:00; the booking
    is then moved there: Ana is busy, so it is routed again, to Ben — also in the replay, where the move comes
    after the last lead."""
    from booking.services import booking_reschedule

    ana, ben = reps[0].pk, reps[1].pk
    with time_machine.travel(at(2, 9), tick=False):
        result = booking_create(
            meeting_type=duo, start=at(3, 11), name="P", email="p@example.org", timezone="Europe/Berlin",
            now=at(2, 9),
        )  # fmt: skip
    BusyInterval.objects.create(rep=reps[0], start=at(4, 11), end=at(4, 12), source="calendar", synced_at=T)
    with time_machine.travel(at(2, 11), tick=False):
        booking_reschedule(token=result.body["manage_url"].rsplit("/", 1)[-1], start=at(4, 11), now=at(2, 11))
    assert Booking.objects.get(pk=result.body["id"]).hosts.get(active=True).rep_id == ben

    policy, leads = replay(duo.pool)
    assert leads[0].moves and leads[0].moves[0].kept is False
    out = simulate(policy, leads)
    assert out.assignments == [(ben,)] and out.reproduced == 1
    assert simulate(replace(policy, busy_events=()), leads).assignments == [(ana,)]
