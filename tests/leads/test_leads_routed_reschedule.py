"""A routed booking keeps its route when it is rescheduled: routed again (its host busy at the new time), it
goes only to the route's candidates (skills, territory, account owner), and the times the manage page
offers are its host's and the candidates'. An admin's reassignment outside them stays (the host is kept
when free)."""

from __future__ import annotations

import pytest

from booking.models import Booking
from booking.services import booking_reassign
from routing.models import PoolMember
from tests.booking.booking_factories import body
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
DAY = {"start": "2026-03-03", "end": "2026-03-03", "timezone": "Europe/Berlin"}


@pytest.fixture
def routed(api, rules, reps):
    """Ana's booking at 10:00, routed by the Enterprise rule (candidates: Ana only)."""
    token = api.post("/api/v1/meeting-types/demo/route", lead_body(), format="json").json()["route"]
    created = api.post(
        "/api/v1/meeting-types/demo/bookings", body("2026-03-03T10:00:00+01:00", route=token), format="json"
    ).json()
    assert [h["name"] for h in created["hosts"]] == ["Ana"]
    return created


def hours(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return sorted({s["start"][11:13] for s in response.json()["slots"]})


def test_a_routed_booking_is_routed_again_only_to_its_candidates(api, routed):
    url = f"/api/v1/bookings/{routed['manage_token']}/reschedule"
    moved = api.post(url, {"start": "2026-03-03T14:00:00+01:00"}, format="json")  # only Ben and Cara then
    assert moved.status_code == 409 and moved.json()["code"] == "slot_unavailable", moved.json()
    offered = moved.json()["alternatives"]  # the booking's own possible times: Ana's, not Ben's or Cara's
    assert offered and all(t[11:13] in {"09", "10", "11"} for t in offered), offered
    assert Booking.objects.get().hosts.get(active=True).rep.name == "Ana"
    kept = api.post(url, {"start": "2026-03-03T11:00:00+01:00"}, format="json")
    assert [h["name"] for h in kept.json()["hosts"]] == ["Ana"]
    assert Booking.objects.get().decision["route"]["candidates"] == routed_candidates()


def routed_candidates() -> list[int]:
    return [PoolMember.objects.get(rep__name="Ana").rep_id]


def test_the_manage_pages_times_are_the_routes(api, routed):
    assert hours(api.get(f"/api/v1/bookings/{routed['manage_token']}/slots", DAY)) == ["09", "10", "11"]


def test_nobody_of_the_route_free_is_a_conflict(api, routed, reps):
    from calendars.models import TimeOff
    from tests.booking.booking_factories import NOW

    TimeOff.objects.create(rep=reps["ana"], start=NOW, end=NOW.replace(day=NOW.day + 10))
    moved = api.post(
        f"/api/v1/bookings/{routed['manage_token']}/reschedule",
        {"start": "2026-03-03T15:00:00+01:00"},
        format="json",
    )
    assert moved.status_code == 409  # Ben and Cara are free, but not the route's


def test_a_booking_routed_again_keeps_its_route_record(api, rules):
    token = api.post(
        "/api/v1/meeting-types/demo/route", lead_body(answers={"size": "11-50"}), format="json"
    ).json()["route"]  # the catch-all rule: every member
    created = api.post(
        "/api/v1/meeting-types/demo/bookings", body("2026-03-03T10:00:00+01:00", route=token), format="json"
    ).json()
    moved = api.post(
        f"/api/v1/bookings/{created['manage_token']}/reschedule",
        {"start": "2026-03-03T14:00:00+01:00"},
        format="json",
    )
    assert moved.json()["hosts"][0]["name"] in {"Ben", "Cara"}
    decision = Booking.objects.get().decision
    assert decision["route"]["candidates"] is None and decision["route"]["lead_id"] is not None
    assert decision["history"][-1]["kept_hosts"] is False


def test_an_admins_choice_outside_the_route_is_kept_when_free(api, routed, reps):
    booking = Booking.objects.get()
    ben = PoolMember.objects.get(rep=reps["ben"])
    booking.start = booking.start.replace(hour=13)  # 14:00 Berlin, when Ben works
    booking.end = booking.end.replace(hour=13, minute=30)
    booking.save()
    booking.hosts.update(blocked_start=booking.start, blocked_end=booking.end)
    booking_reassign(booking_id=booking.pk, to_member_id=ben.pk, reason="owner asked")
    moved = api.post(
        f"/api/v1/bookings/{routed['manage_token']}/reschedule",
        {"start": "2026-03-03T15:00:00+01:00"},
        format="json",
    )
    assert [h["name"] for h in moved.json()["hosts"]] == ["Ben"]
