"""Reassigning a seat of a ``group`` booking: the new host must fill the seat's role (an account executive's
seat goes to another account executive), so the meeting still has one host of every role. Other strategies
have no roles to keep."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.errors import ReassignNotPossible
from booking.services import booking_create, booking_reassign
from routing.models import LedgerEntry, PoolMember
from tests.booking.booking_factories import START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def group_booking():
    ae1, ae2, se1 = make_rep("Ann AE"), make_rep("Abe AE"), make_rep("Sol SE")
    pool = make_pool("group", [ae1, ae2, se1], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="group-demo")
    body = booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email="pat@example.org", timezone="UTC"
    ).body
    members = {m.rep.name: m for m in PoolMember.objects.filter(pool=pool).select_related("rep")}
    return meeting_type.bookings.get(pk=body["id"]), members


def seats(booking) -> dict[str, str]:
    return {h.role: h.rep.name for h in booking.hosts.filter(active=True).select_related("rep")}


def test_a_seat_goes_only_to_a_member_of_its_role(group_booking):
    booking, members = group_booking
    before = seats(booking)
    assert before["se"] == "Sol SE" and before["ae"] in {"Ann AE", "Abe AE"}
    spare_ae = members["Abe AE" if before["ae"] == "Ann AE" else "Ann AE"]
    with pytest.raises(
        ReassignNotPossible, match="The 'se' seat goes only to a member in that role; .* is 'ae'"
    ):
        booking_reassign(
            booking_id=booking.pk, to_member_id=spare_ae.pk, from_rep_id=members["Sol SE"].rep_id, reason="x"
        )
    assert seats(booking) == before
    assert not LedgerEntry.objects.filter(booking=booking, kind__startswith="reassigned").exists()

    booking_reassign(
        booking_id=booking.pk, to_member_id=spare_ae.pk, from_rep_id=members[before["ae"]].rep_id, reason="x"
    )
    assert seats(booking) == {"ae": spare_ae.rep.name, "se": "Sol SE"}


def test_the_admin_page_says_why_a_seat_cannot_go_to_another_role(group_booking, admin_client):
    booking, members = group_booking
    page = admin_client.get(f"/admin/booking/booking/{booking.pk}/reassign/").content.decode()
    spare = "Abe AE" if seats(booking)["ae"] == "Ann AE" else "Ann AE"
    assert f"{spare} (ae)" in page
    response = admin_client.post(
        f"/admin/booking/booking/{booking.pk}/reassign/",
        {
            "to_member": members[spare].pk,
            "from_rep": members["Sol SE"].rep_id,
            "code": "other",
            "reason": "x",
        },
    )
    assert response.status_code == 200
    assert "The &#x27;se&#x27; seat goes only to a member in that role" in response.content.decode()
    assert seats(booking)["se"] == "Sol SE"


def test_roles_mean_nothing_outside_group_pools():
    ana, bo = make_rep("Ana"), make_rep("Bo")
    meeting_type = make_meeting_type(make_pool("ranked", [ana, bo], roles=["ae", "se"]), slug="ranked-roles")
    body = booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email="pat@example.org", timezone="UTC"
    ).body
    booking = meeting_type.bookings.get(pk=body["id"])
    assert seats(booking) == {"ae": "Ana"}
    booking_reassign(booking_id=booking.pk, to_member_id=PoolMember.objects.get(rep=bo).pk, reason="x")
    assert [h.rep.name for h in booking.hosts.filter(active=True)] == ["Bo"]


def test_a_group_reschedule_keeps_the_hosts_who_are_free_and_routes_only_the_others(api):
    from calendars.models import BusyInterval

    ann, abe, sol, sue = make_rep("Ann AE"), make_rep("Abe AE"), make_rep("Sol SE"), make_rep("Sue SE")
    pool = make_pool("group", [ann, abe, sol, sue], roles=["ae", "ae", "se", "se"])
    make_meeting_type(pool, slug="group-move")
    data = {
        "start": "2026-03-03T10:00:00+01:00",
        "name": "Pat",
        "email": "pat@example.org",
        "timezone": "UTC",
    }
    created = api.post("/api/v1/meeting-types/group-move/bookings", data, format="json").json()
    first = {h["role"]: h["name"] for h in created["hosts"]}
    # the SE is busy at the new time; the AE is free, though the other AE is next up now
    se = sol if first["se"] == "Sol SE" else sue
    new_start = START + dt.timedelta(hours=2)
    BusyInterval.objects.create(rep=se, start=new_start, end=new_start + dt.timedelta(minutes=30))
    moved = api.post(
        f"/api/v1/bookings/{created['manage_token']}/reschedule",
        {"start": new_start.isoformat()},
        format="json",
    )
    assert moved.status_code == 200, moved.json()
    now = {h["role"]: h["name"] for h in moved.json()["hosts"]}
    assert now["ae"] == first["ae"] and now["se"] != first["se"]
    ledger = {(e.rep.name, e.kind) for e in LedgerEntry.objects.filter(kind__startswith="reassigned")}
    assert ledger == {(first["se"], "reassigned_from"), (now["se"], "reassigned_to")}
