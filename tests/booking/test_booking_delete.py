"""Deleting bookings (``bookings_delete``, the admin's delete button and "delete selected"): a deleted
booking counts for nobody's fairness any more, a confirmed booking that is not over is cancelled instead,
and the admin never answers a refusal with a 500 or logs a deletion that did not happen. (The tallies are
checked against the host rows after every test: tests/conftest.py. The lock waits: test_booking_change_locks.)
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse

from booking import outbox
from booking.errors import BookingChangesPending, BookingStillActive
from booking.models import Booking, BookingHost, BookingOutcome, OutboxMessage
from booking.services import booking_cancel, booking_create, booking_outcome_record, bookings_delete
from routing.ledger import pool_ledger
from routing.models import LedgerEntry
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)  # the day after NOW
AFTER = START + dt.timedelta(hours=2)


@pytest.fixture
def team():
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben])
    return pool, make_meeting_type(pool), [ana.pk, ben.pk]


def delivered() -> None:
    """The outbox delivered (these tests' transactions never commit, so no delivery follows them)."""
    assert "retry" not in outbox.sweep(now=NOW + dt.timedelta(days=3650))


def book(meeting_type, start=START) -> tuple[Booking, str]:
    result = booking_create(
        meeting_type=meeting_type, start=start, name="Ada", email="ada@example.org", timezone="UTC", now=NOW
    )
    delivered()
    return Booking.objects.get(pk=result.body["id"]), result.body["manage_token"]


def cancel(token: str) -> None:
    booking_cancel(token=token, now=NOW)
    delivered()


def load(pool, reps) -> dict:
    return {rid: n for rid, n in pool_ledger(pool, reps, now=AFTER).raw.items() if n}


def test_a_deleted_cancelled_booking_charges_nobody(team):
    pool, meeting_type, reps = team
    booking, token = book(meeting_type)
    cancel(token)
    assert load(pool, reps) == {}
    assert bookings_delete(booking_ids=[booking.pk], now=NOW) == 1
    # its "assigned" entry once stayed behind without its booking and counted as an assignment again
    assert load(pool, reps) == {}
    assert not LedgerEntry.objects.exists()


def test_a_deleted_booking_that_was_held_counts_no_more(team):
    pool, meeting_type, reps = team
    booking, _ = book(meeting_type)
    host = booking.hosts.get().rep_id
    other, _ = book(meeting_type, START + dt.timedelta(hours=1))
    booking_outcome_record(booking=booking, kind="held", now=AFTER)
    assert load(pool, reps) == {host: 1, other.hosts.get().rep_id: 1}
    assert bookings_delete(booking_ids=[booking.pk], now=AFTER) == 1
    assert load(pool, reps) == {other.hosts.get().rep_id: 1}
    assert not BookingHost.objects.filter(booking_id=booking.pk).exists()
    assert not BookingOutcome.objects.exists()
    assert list(Booking.objects.all()) == [other]


def test_a_confirmed_booking_not_over_yet_is_refused_with_the_rest(team):
    _, meeting_type, _ = team
    done, token = book(meeting_type)
    cancel(token)
    upcoming, _ = book(meeting_type)
    with pytest.raises(BookingStillActive):
        bookings_delete(booking_ids=[done.pk, upcoming.pk], now=NOW)
    assert Booking.objects.count() == 2
    assert bookings_delete(booking_ids=[done.pk, upcoming.pk, 10**9], now=upcoming.end) == 2
    assert bookings_delete(booking_ids=[], now=NOW) == 0


def test_a_booking_whose_changes_are_not_delivered_yet_waits_for_them(team):
    _, meeting_type, _ = team
    booking, token = book(meeting_type)
    cancel(token)
    cancellation = OutboxMessage.objects.filter(booking=booking, event="booking.cancelled")
    assert cancellation.exists() and not cancellation.exclude(status="delivered").exists()
    cancellation.update(status=OutboxMessage.Status.PENDING)  # as with a broker and no worker yet
    with pytest.raises(BookingChangesPending):
        bookings_delete(booking_ids=[booking.pk], now=NOW)
    assert Booking.objects.filter(pk=booking.pk).exists()
    cancellation.update(status=OutboxMessage.Status.DEAD)  # given up: nothing left to deliver
    assert bookings_delete(booking_ids=[booking.pk], now=NOW) == 1


def test_the_admin_offers_no_delete_for_a_booking_not_over(team, admin_client, clock):
    _, meeting_type, _ = team
    booking, _ = book(meeting_type)
    page = admin_client.get(reverse("admin:booking_booking_change", args=[booking.pk])).content.decode()
    assert "deletelink" not in page
    url = reverse("admin:booking_booking_delete", args=[booking.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Booking.objects.filter(pk=booking.pk).exists()


def test_the_admin_deletes_a_cancelled_booking_and_logs_it(team, admin_client, clock):
    pool, meeting_type, reps = team
    booking, token = book(meeting_type)
    cancel(token)
    url = reverse("admin:booking_booking_delete", args=[booking.pk])
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Booking.objects.exists()
    assert LogEntry.objects.filter(action_flag=DELETION, object_id=str(booking.pk)).count() == 1
    assert load(pool, reps) == {}


def test_delete_selected_names_a_booking_not_over_and_deletes_nothing(team, admin_client, clock):
    _, meeting_type, _ = team
    done, token = book(meeting_type)
    cancel(token)
    upcoming, _ = book(meeting_type)
    url = reverse("admin:booking_booking_changelist")
    form = {"action": "delete_selected", "_selected_action": [done.pk, upcoming.pk]}
    page = admin_client.post(url, form).content.decode()
    assert "cancel it" in page and str(upcoming) in page
    admin_client.post(url, {**form, "post": "yes"})
    assert Booking.objects.count() == 2
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_delete_selected_deletes_bookings_that_are_over(team, admin_client):
    pool, meeting_type, reps = team  # the admin's clock is today's: these bookings are over
    first, _ = book(meeting_type)
    second, _ = book(meeting_type, START + dt.timedelta(hours=1))
    url = reverse("admin:booking_booking_changelist")
    form = {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"}
    assert admin_client.post(url, form).status_code == 302
    assert not Booking.objects.exists() and not BookingHost.objects.exists()
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 2
    assert load(pool, reps) == {}
