"""Booking outcomes: the model's constraint, ``booking_outcome_record`` and POST /bookings/id/{id}/outcome."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from booking.errors import BookingNotActive, BookingNotStarted, InvalidInput
from booking.models import Booking, BookingOutcome, OutboxMessage
from booking.outbox import REGISTRY, register_handler
from booking.services import booking_cancel, booking_outcome_record
from routing.models import LedgerEntry
from tests.booking.booking_factories import body

pytestmark = [pytest.mark.django_db]
AFTER = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)  # the booking (09:00–09:30 UTC) is over


@pytest.fixture
def booked(api, meeting_type, clock):
    response = api.post("/api/v1/meeting-types/intro/bookings", body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    return Booking.objects.get(pk=data["id"]), data["manage_token"]


@pytest.fixture
def later(clock):
    clock.move_to(AFTER)


@pytest.fixture
def staff():
    """Staff who may change bookings (the admin's outcome actions ask the same)."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("boss", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_booking"))
    return user


def url(booking_id):
    return f"/api/v1/bookings/id/{booking_id}/outcome"


def client_for(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


# --- model constraint


@pytest.mark.parametrize(
    ("kind", "amount", "ok"),
    [
        ("won", Decimal("10.00"), True),
        ("won", None, False),
        ("won", Decimal("-1"), False),
        ("held", None, True),
        ("held", Decimal("5"), False),
        ("lost", Decimal("0"), False),
        ("bogus", None, False),
    ],
)
def test_amount_only_for_won_is_a_database_constraint(booked, kind, amount, ok):
    booking, _ = booked
    outcome = BookingOutcome(booking=booking, kind=kind, amount=amount)
    if ok:
        outcome.save()
        assert BookingOutcome.objects.filter(booking=booking).count() == 1
    else:
        with pytest.raises(IntegrityError), transaction.atomic():
            outcome.save()


# --- service


def test_record_before_start_is_refused(booked):
    booking, _ = booked
    with pytest.raises(BookingNotStarted):
        booking_outcome_record(booking=booking, kind="held")
    assert not BookingOutcome.objects.exists()
    booking.refresh_from_db()
    assert booking.status == "confirmed"


def test_record_on_cancelled_booking_is_refused(booked, later):
    booking, token = booked
    with time_machine.travel(dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC), tick=False):
        booking_cancel(token=token)
    with pytest.raises(BookingNotActive):
        booking_outcome_record(booking=booking, kind="held")


@pytest.mark.parametrize(
    ("kind", "amount", "field"),
    [
        ("won", None, "amount"),
        ("held", "12", "amount"),
        ("won", "-3", "amount"),
        ("won", "1.234", "amount"),
        ("won", "abc", "amount"),
        ("won", "1e20", "amount"),
        ("maybe", None, "kind"),
    ],
)
def test_record_validates_fields(booked, later, kind, amount, field):
    booking, _ = booked
    with pytest.raises(InvalidInput) as info:
        booking_outcome_record(booking=booking, kind=kind, amount=amount)
    assert field in info.value.extra["errors"]


def test_won_sets_completed_and_replacing_is_audited(booked, later, staff):
    booking, _ = booked
    first = booking_outcome_record(booking=booking, kind="qualified", note="good fit", user=staff)
    assert first.replaced is None and booking.status == "completed"
    second = booking_outcome_record(booking=booking, kind="won", amount="1200.5", user=staff)
    assert second.replaced == "qualified"
    assert BookingOutcome.objects.count() == 1
    outcome = BookingOutcome.objects.get()
    assert (outcome.kind, outcome.amount, outcome.recorded_by) == ("won", Decimal("1200.50"), staff)
    booking.refresh_from_db()
    history = [h for h in booking.decision["history"] if h["action"] == "outcome"]
    assert [h["kind"] for h in history] == ["qualified", "won"]
    assert history[1]["replaced"]["kind"] == "qualified" and history[1]["replaced"]["note"] == "good fit"


def test_no_show_credits_fairness_back_and_correction_recounts(booked, later):
    booking, _ = booked
    rep_id = booking.hosts.get().rep_id
    booking_outcome_record(booking=booking, kind="no_show")
    booking.refresh_from_db()
    assert booking.status == "no_show"
    credited = LedgerEntry.objects.filter(booking=booking, kind="credited")
    assert [(e.rep_id, e.delta) for e in credited] == [(rep_id, -1.0)]
    booking_outcome_record(booking=booking, kind="held")
    booking.refresh_from_db()
    assert booking.status == "completed"
    assigned = LedgerEntry.objects.filter(booking=booking, kind="assigned").order_by("pk")
    assert [e.delta for e in assigned] == [1.0, 1.0]  # at creation, and again after the correction


def test_no_show_counted_by_pool_writes_no_credit(booked, later, pool):
    pool.count_no_shows = True
    pool.save()
    booking, _ = booked
    booking_outcome_record(booking=booking, kind="no_show")
    assert not LedgerEntry.objects.filter(booking=booking, kind="credited").exists()


def test_outcome_event_goes_through_the_outbox(booked, later):
    seen = []
    register_handler("booking.outcome_recorded", seen.append, name="tests.outcome_seen")
    try:
        booking, _ = booked
        booking_outcome_record(booking=booking, kind="won", amount=99)
    finally:
        REGISTRY["booking.outcome_recorded"].pop("tests.outcome_seen")
    row = OutboxMessage.objects.get(event="booking.outcome_recorded")
    assert row.payload["kind"] == "won" and row.payload["amount"] == "99.00"
    assert row.payload["previous"] is None


# --- API


def test_api_staff_records_outcome(booked, later, staff):
    booking, _ = booked
    client = client_for(staff)
    # DRF's session authentication enforces CSRF: a cross-site POST without the token is refused
    assert client.post(url(booking.pk), {"kind": "held"}, format="json").status_code == 403
    client.get("/admin/")  # sets the csrftoken cookie
    csrf = {"X-CSRFToken": client.cookies["csrftoken"].value}
    response = client.post(url(booking.pk), {"kind": "won", "amount": "250.00"}, format="json", headers=csrf)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["booking_status"] == "completed" and data["amount"] == "250.00"
    assert data["recorded_by"] == "boss" and data["replaced"] is None
    response = client.post(url(booking.pk), {"kind": "no_show"}, format="json", headers=csrf)
    assert response.status_code == 200 and response.json()["replaced"] == "won"
    booking.refresh_from_db()
    assert booking.status == "no_show"


def test_api_host_user_may_record_but_not_other_users(booked, later, rep):
    booking, _ = booked
    host_user = get_user_model().objects.create_user("ana")
    rep.user = host_user
    rep.save()
    other = get_user_model().objects.create_user("eve")
    anonymous = APIClient().post(url(booking.pk), {"kind": "held"}, format="json")
    assert anonymous.status_code == 403 and anonymous.json()["code"] == "not_authenticated"
    denied = APIClient()
    denied.force_login(other)
    response = denied.post(url(booking.pk), {"kind": "held"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    allowed = APIClient()
    allowed.force_login(host_user)
    assert allowed.post(url(booking.pk), {"kind": "held"}, format="json").status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "kind"),
        ({"kind": "won"}, "amount"),
        ({"kind": "won", "amount": "-5"}, "amount"),
        ({"kind": "won", "amount": "12345678901.00"}, "amount"),
        ({"kind": "won", "amount": "NaN"}, "amount"),
        ({"kind": "lost", "amount": 3}, "amount"),
        ({"kind": "held", "note": "x" * 2001}, "note"),
        ({"kind": ["held"]}, "kind"),
    ],
)
def test_api_field_errors(booked, later, staff, payload, field):
    booking, _ = booked
    client = APIClient()
    client.force_login(staff)
    response = client.post(url(booking.pk), payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_api_before_start_is_409_and_unknown_booking_404(booked, staff):
    booking, _ = booked
    client = APIClient()
    client.force_login(staff)
    response = client.post(url(booking.pk), {"kind": "held"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "booking_not_started"
    assert client.post(url(booking.pk + 999), {"kind": "held"}, format="json").status_code == 404
