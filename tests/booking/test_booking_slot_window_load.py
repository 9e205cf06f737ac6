"""What a slot question loads: only the part of the asked window that can be offered ([now, now + horizon)),
or for a round-robin pool that whole range; a window outside it loads nothing."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine

import booking.selectors as booking_selectors
from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _no_read_limit(settings):
    settings.API_READ_RATE_LIMIT = ""


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_a_round_robin_slot_request_for_a_past_window_does_not_read_the_reps_whole_history(api, monkeypatch):
    """Anyone may ask a round-robin meeting type's slots for a window in the past
    (``GET …/slots?start=2024-01-01&end=2024-03-02``, any date from 2000 on is accepted). Nothing before
    now can be offered, so the answer is empty, yet the server loads every booking and busy row of the
    pool's reps from the window's start up to the horizon (``booking.selectors._load_window`` takes
    ``min(window.start, now)``): here 2,000 past meetings for an empty answer, and with a real history (or
    ``start=2000-01-01``) an anonymous, cheap GET makes each request read and sweep the reps' whole booking
    history, tens of times slower than a normal slot page. Only [now, now + horizon] decides a round-robin
    pool's offer."""
    ana = make_rep("Ana", tz="UTC", hours=(0, 0), days=range(7))
    ben = make_rep("Ben", tz="UTC", hours=(0, 0), days=range(7))
    pool = make_pool("round_robin", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, slug="rotation", horizon_days=14)
    bulk_bookings(meeting_type, [ana, ben], [at(2024, 1, 1) + dt.timedelta(hours=i) for i in range(2000)])

    loaded = []
    real = booking_selectors.load_pool_state

    def counting(*args, **kwargs):
        state = real(*args, **kwargs)
        loaded.append(sum(len(m.rep.busy) for m in state.spec.members))
        return state

    monkeypatch.setattr(booking_selectors, "load_pool_state", counting)
    url = "/api/v1/meeting-types/rotation/slots"
    with time_machine.travel(at(2026, 3, 2, 6), tick=False):
        t0 = time.perf_counter()
        past = api.get(url, {"start": "2024-01-01", "end": "2024-03-02", "timezone": "UTC"})
        t1 = time.perf_counter()
        past_rows = sum(loaded)  # nothing loaded at all is best
        loaded.clear()
        current = api.get(url, {"start": "2026-03-02", "end": "2026-03-08", "timezone": "UTC"})
        t2 = time.perf_counter()
    assert past.status_code == current.status_code == 200
    assert past.json()["slots"] == [] and current.json()["slots"]
    [current_rows] = loaded
    assert past_rows <= current_rows, (
        f"an empty answer for a past window loaded {past_rows} past meetings as busy time "
        f"({t1 - t0:.3f} s) against {current_rows} for this week's slot page ({t2 - t1:.3f} s)"
    )
