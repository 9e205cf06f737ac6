"""The live free/busy check of a booking's host (and of a reschedule's, and of a reassignment's target) runs
before the transaction, not under the rep locks."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections

from booking.errors import ReassignNotPossible
from booking.models import Booking, BookingHost
from booking.services import booking_create, booking_reschedule
from booking.services import manage as booking_manage
from booking.services import reassign as booking_reassign
from booking.services import routing as booking_routing
from calendars.models import Calendar, TimeOff
from calendars.services.sync import calendar_sync
from routing.models import PoolMember
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_working_rep

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def next_weekday_at_ten(days: int = 3) -> dt.datetime:
    day = dt.datetime.now(BERLIN).date() + dt.timedelta(days=days)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10), tzinfo=BERLIN)


@pytest.fixture
def ranked_pair(google_connection):
    """Two reps with Google calendars (synced just now, so neither is withheld) in a ``ranked`` pool: the
    first is the pool's first choice."""
    reps = [make_working_rep("First"), make_working_rep("Second")]
    for rep in reps:
        conn = google_connection(rep)
        calendar_sync(calendar_id=Calendar.objects.get(connection=conn, is_primary=True).pk)
    return reps, make_meeting_type(make_pool("ranked", reps))


class LiveCalls(list):
    """(reps asked, inside a transaction?) per call; ``hooks`` run at each call, before the provider."""

    def __init__(self):
        super().__init__()
        self.hooks: list = []


@pytest.fixture
def live_calls(monkeypatch):
    """Every live check of a booking: the reps asked and whether a transaction was open."""
    real = booking_routing.hosts_busy_live
    calls = LiveCalls()
    outside = len(connection.atomic_blocks)  # the test's own transaction

    def spy(rep_ids, start, end, **kwargs):
        calls.append((tuple(rep_ids), len(connection.atomic_blocks) > outside))
        for hook in calls.hooks:
            hook(rep_ids)
        return real(rep_ids, start, end, **kwargs)

    monkeypatch.setattr(booking_routing, "hosts_busy_live", spy)
    monkeypatch.setattr(booking_manage, "hosts_busy_live", spy)  # a reschedule keeping its hosts
    monkeypatch.setattr(booking_reassign, "hosts_busy_live", spy)  # an admin's reassignment
    return calls


def create(meeting_type, start, **extra):
    return booking_create(
        meeting_type=meeting_type,
        start=start,
        name="Pat",
        email="pat@example.org",
        timezone="Europe/Berlin",
        **extra,
    )


def book(meeting_type, start):
    return create(meeting_type, start).body


def test_a_host_busy_live_is_skipped_before_the_transaction(ranked_pair, live_calls, fake_google):
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten()
    calendar = Calendar.objects.get(connection__rep=first, is_primary=True)
    # an event the last sync did not see: only the live check knows
    fake_google.put_event(calendar.external_id, start=start, end=start + dt.timedelta(minutes=30))

    body = book(meeting_type, start)

    assert [h["email"] for h in body["hosts"]] == [second.email]
    assert live_calls == [((first.pk,), False), ((second.pk,), False)]  # neither under the rep locks
    assert Booking.objects.get(pk=body["id"]).decision["live_busy"] == [first.pk]


def test_a_host_asked_before_is_not_asked_again(ranked_pair, live_calls):
    (first, _second), meeting_type = ranked_pair
    body = book(meeting_type, next_weekday_at_ten())
    assert [h["email"] for h in body["hosts"]] == [first.email]
    assert live_calls == [((first.pk,), False)]


def test_a_host_chosen_under_the_locks_but_not_asked_before_is_asked_there(ranked_pair, live_calls):
    """Between the check and the locks another booking takes the first choice: the second one, chosen under
    the locks, was not asked before, so it is asked there."""
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten().astimezone(dt.UTC)
    end = start + dt.timedelta(minutes=30)

    def take_first(rep_ids):
        if list(rep_ids) == [first.pk] and not Booking.objects.exists():
            taken = Booking.objects.create(
                meeting_type=meeting_type,
                pool=meeting_type.pool,
                start=start,
                end=end,
                prospect_name="Other",
                prospect_email="other@example.org",
                prospect_timezone="Europe/Berlin",
                manage_token_hash=secrets.token_hex(32),
            )
            BookingHost.objects.create(booking=taken, rep=first, blocked_start=start, blocked_end=end)

    live_calls.hooks.append(take_first)
    body = book(meeting_type, start)

    assert [h["email"] for h in body["hosts"]] == [second.email]
    assert live_calls == [((first.pk,), False), ((second.pk,), True)]


def test_a_reschedule_asks_before_its_transaction_too(ranked_pair, live_calls, fake_google):
    """Keeping the host: asked once, before the transaction. The host busy at the new time: the pool routes
    again, and the new host is asked before the transaction as well."""
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten()
    token = book(meeting_type, start)["manage_token"]
    live_calls.clear()

    later = start + dt.timedelta(hours=2)
    assert [h["email"] for h in booking_reschedule(token=token, start=later)["hosts"]] == [first.email]
    assert live_calls == [((first.pk,), False)]

    live_calls.clear()
    latest = start + dt.timedelta(hours=4)
    calendar = Calendar.objects.get(connection__rep=first, is_primary=True)
    fake_google.put_event(calendar.external_id, start=latest, end=latest + dt.timedelta(minutes=30))
    assert [h["email"] for h in booking_reschedule(token=token, start=latest)["hosts"]] == [second.email]
    assert live_calls == [((first.pk,), False), ((second.pk,), False)]


def test_a_reassignment_asks_before_its_transaction(ranked_pair, live_calls, fake_google):
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten()
    booking_id = book(meeting_type, start)["id"]
    to_second = PoolMember.objects.get(pool=meeting_type.pool, rep=second).pk
    live_calls.clear()
    calendar = Calendar.objects.get(connection__rep=second, is_primary=True)
    fake_google.put_event(calendar.external_id, start=start, end=start + dt.timedelta(minutes=30))
    with pytest.raises(ReassignNotPossible, match="busy"):
        booking_reassign.booking_reassign(booking_id=booking_id, to_member_id=to_second, reason="cover")
    assert live_calls == [((second.pk,), False)]

    fake_google.calendar(calendar.external_id).events.clear()
    live_calls.clear()
    booking_reassign.booking_reassign(booking_id=booking_id, to_member_id=to_second, reason="cover")
    assert live_calls == [((second.pk,), False)]
    assert Booking.objects.get(pk=booking_id).hosts.get(active=True).rep_id == second.pk


def test_a_reassignment_the_rules_refuse_asks_no_provider(ranked_pair, live_calls):
    """The target is off then, or hosts the booking already: refused without a live check."""
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten()
    booking_id = book(meeting_type, start)["id"]
    pool = meeting_type.pool
    to_first = PoolMember.objects.get(pool=pool, rep=first).pk
    to_second = PoolMember.objects.get(pool=pool, rep=second).pk
    TimeOff.objects.create(rep=second, start=start - dt.timedelta(hours=1), end=start + dt.timedelta(hours=2))
    live_calls.clear()

    with pytest.raises(ReassignNotPossible, match="not free"):
        booking_reassign.booking_reassign(booking_id=booking_id, to_member_id=to_second, reason="cover")
    with pytest.raises(ReassignNotPossible, match="already hosts"):
        booking_reassign.booking_reassign(booking_id=booking_id, to_member_id=to_first, reason="cover")

    assert live_calls == []
    assert Booking.objects.get(pk=booking_id).hosts.get(active=True).rep_id == first.pk


def test_a_reassignment_refused_before_but_free_in_its_transaction_asks_there(
    ranked_pair, live_calls, monkeypatch
):
    """The target's time off is withdrawn between the check before the transaction and the transaction: the
    rules let the target through there, so the provider is asked there (it was not asked before)."""
    (first, second), meeting_type = ranked_pair
    start = next_weekday_at_ten()
    booking_id = book(meeting_type, start)["id"]
    to_second = PoolMember.objects.get(pool=meeting_type.pool, rep=second).pk
    off = TimeOff.objects.create(rep=second, start=start, end=start + dt.timedelta(hours=1))
    real = booking_reassign._refused

    def refused_then_withdrawn(*args, **kwargs):
        answer = real(*args, **kwargs)
        off.delete()
        return answer

    monkeypatch.setattr(booking_reassign, "_refused", refused_then_withdrawn)
    live_calls.clear()

    booking_reassign.booking_reassign(booking_id=booking_id, to_member_id=to_second, reason="cover")

    assert live_calls == [((second.pk,), True)]
    assert Booking.objects.get(pk=booking_id).hosts.get(active=True).rep_id == second.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_slow_provider_does_not_hold_the_pools_other_bookings(ranked_pair, monkeypatch):
    """Two bookings of one pool at different times, each live check waiting (up to 5 s) for the other's to
    begin: both meet. Were the checks under the rep locks, the second booking would queue behind the first
    one's check, the barrier would break and it would time out on the locks."""
    (first, _second), meeting_type = ranked_pair
    barrier = threading.Barrier(2, timeout=5)
    met, outcomes = [], []

    def meet(rep_ids, start, end, **kwargs):
        try:
            barrier.wait()
            met.append(tuple(rep_ids))
        except threading.BrokenBarrierError:
            pass
        return set()

    monkeypatch.setattr(booking_routing, "hosts_busy_live", meet)
    start = next_weekday_at_ten()

    def run(hours: int) -> None:
        try:
            outcomes.append(book(meeting_type, start + dt.timedelta(hours=hours))["hosts"][0]["email"])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(hours,)) for hours in (0, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert met == [(first.pk,), (first.pk,)]
    assert outcomes == [first.email, first.email]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_with_one_key_ask_the_provider_once(ranked_pair, monkeypatch):
    """Five requests with one Idempotency-Key at once: the one that gets the key's turn first asks the
    provider (slowly) and books; the others wait for their turn and replay its response unasked."""
    (first, _second), meeting_type = ranked_pair
    asked = []

    def slow_provider(rep_ids, start, end, **kwargs):
        asked.append(tuple(rep_ids))
        time.sleep(0.2)
        return set()

    monkeypatch.setattr(booking_routing, "hosts_busy_live", slow_provider)
    start, barrier, outcomes = next_weekday_at_ten(), threading.Barrier(5), []

    def run() -> None:
        try:
            barrier.wait()
            result = create(meeting_type, start, idempotency_key="one-key")
            outcomes.append((result.replayed, result.body))
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcomes.append((None, type(exc).__name__))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert asked == [(first.pk,)]
    assert sorted(replayed for replayed, _ in outcomes) == [False, True, True, True, True]
    assert len({json.dumps(body, sort_keys=True) for _, body in outcomes}) == 1
    assert Booking.objects.count() == 1
