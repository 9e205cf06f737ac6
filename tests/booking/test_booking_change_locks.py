"""Changes of a booking that move its hosts' fairness tallies take the hosts' rep locks first, as a new
booking does (``locking.lock_reps``; why: tests/booking/test_booking_tally_concurrency.py). While another
transaction holds a host's lock, a cancellation, an outcome, the admin's status shortcut and a deletion
(``bookings_delete``, the admin's delete button and "delete selected") wait for it, and
past ``BOOKING_LOCK_TIMEOUT_MS`` answer "try again" (409) with nothing changed; once it is free they go
through. Each test fails if its service leaves the lock out (it would go through at once)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse

from booking.errors import TryAgain
from booking.models import Booking, BookingHost
from booking.services import (
    booking_cancel,
    booking_create,
    booking_outcome_record,
    booking_set_outcome,
    bookings_delete,
)
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.booking.booking_race import lock_held_elsewhere

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
LATER = START + dt.timedelta(hours=2)  # after the meeting: outcomes may be recorded


@pytest.fixture
def booked(settings):
    """A confirmed booking of a one-rep pool (its rep and its manage token); lock waits end after 200 ms."""
    settings.BOOKING_LOCK_TIMEOUT_MS = 200
    rep = make_rep()
    meeting_type = make_meeting_type(make_pool("first_available", [rep]))
    result = booking_create(
        meeting_type=meeting_type, start=START, name="Ada", email="ada@example.org", timezone="UTC", now=NOW
    )
    return rep, Booking.objects.get(pk=result.body["id"]), result.body["manage_token"]


def status(booking: Booking) -> tuple[str, set]:
    hosts = set(BookingHost.objects.filter(booking=booking).values_list("active", "booking_status"))
    return Booking.objects.get(pk=booking.pk).status, hosts


def test_a_cancellation_waits_for_its_hosts_locks(booked):
    rep, booking, token = booked
    with lock_held_elsewhere(rep.pk), pytest.raises(TryAgain):
        booking_cancel(token=token, now=NOW)
    assert status(booking) == ("confirmed", {(True, "confirmed")})
    booking_cancel(token=token, now=NOW)
    assert status(booking) == ("cancelled", {(False, "cancelled")})


def test_an_outcome_waits_for_the_hosts_locks(booked):
    rep, booking, _ = booked
    with lock_held_elsewhere(rep.pk), pytest.raises(TryAgain):
        booking_outcome_record(booking=booking, kind="no_show", now=LATER)
    assert status(booking) == ("confirmed", {(True, "confirmed")})
    booking_outcome_record(booking=booking, kind="no_show", now=LATER)
    assert status(booking) == ("no_show", {(True, "no_show")})


def test_the_status_shortcut_waits_for_the_hosts_locks(booked):
    rep, booking, _ = booked
    with lock_held_elsewhere(rep.pk), pytest.raises(TryAgain):
        booking_set_outcome(booking_id=booking.pk, status="completed", now=LATER)
    assert status(booking) == ("confirmed", {(True, "confirmed")})
    booking_set_outcome(booking_id=booking.pk, status="completed", now=LATER)
    assert status(booking) == ("completed", {(True, "completed")})


def test_a_deletion_waits_for_its_hosts_locks(booked):
    rep, booking, _ = booked
    with lock_held_elsewhere(rep.pk), pytest.raises(TryAgain):
        bookings_delete(booking_ids=[booking.pk], now=LATER)
    assert status(booking) == ("confirmed", {(True, "confirmed")})
    assert bookings_delete(booking_ids=[booking.pk], now=LATER) == 1
    assert not Booking.objects.filter(pk=booking.pk).exists()


@pytest.mark.parametrize("how", ["delete button", "delete selected"])
def test_the_admin_says_try_again_and_logs_no_deletion(booked, admin_client, how):
    rep, booking, _ = booked  # over by the admin's clock (today's)
    if how == "delete button":
        url, form = reverse("admin:booking_booking_delete", args=[booking.pk]), {"post": "yes"}
    else:
        url = reverse("admin:booking_booking_changelist")
        form = {"action": "delete_selected", "_selected_action": [booking.pk], "post": "yes"}
    with lock_held_elsewhere(rep.pk):
        page = admin_client.post(url, form, follow=True).content.decode()
    assert "please try again" in page
    assert status(booking) == ("confirmed", {(True, "confirmed")})
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()
    admin_client.post(url, form)
    assert not Booking.objects.filter(pk=booking.pk).exists()
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 1


def test_a_lock_held_on_another_rep_does_not_hold_them_up(booked):
    rep, booking, token = booked
    with lock_held_elsewhere(make_rep().pk):
        booking_cancel(token=token, now=NOW)
    assert status(booking) == ("cancelled", {(False, "cancelled")})
