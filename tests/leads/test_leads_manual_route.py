"""Issue 7, supervisor override: routing a lead by hand with a reason code (``leads.manual``) and its admin
page. The code decides whether it counts in the pool's fairness ledger (the credit moves from the rep the
lead leaves to the new one); the lead's decision audits it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from booking.errors import BookingInPast, InvalidInput
from booking.models import Booking
from leads.manual import ManualRouteNotPossible, lead_route_by_hand
from leads.models import Lead
from routing.core import Interval
from routing.models import LedgerEntry
from routing.selectors import load_pool_state
from tests.booking.booking_factories import NOW, body, make_rep
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def lead(demo, sales):
    return Lead.objects.create(
        meeting_type=demo,
        email="pat@acme.io",
        name="Pat",
        domain="acme.io",
        timezone="Europe/Berlin",
        outcome=Lead.Outcome.ROUTED,
        pool=sales,
        decision={"rules": []},
    )


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def counts(pool) -> dict[int, float]:
    state = load_pool_state(pool, now=NOW, window=Interval(NOW, NOW + dt.timedelta(hours=1)))
    return {m.rep.rep_id: m.count for m in state.spec.members}


def booked_lead(api, lead) -> Booking:
    created = api.post(
        "/api/v1/meeting-types/demo/bookings",
        body(start="2026-03-03T14:00:00+01:00", answers={"size": "51+"}),
        format="json",
    )
    assert created.status_code == 201, created.json()
    booking = Booking.objects.get(pk=created.json()["id"])
    lead.booking = booking
    lead.save()
    return booking


def test_counting_code_charges_the_rep_and_is_audited(lead, reps, sales):
    ben = reps["ben"]
    lead_route_by_hand(
        lead_id=lead.pk, rep_id=ben.pk, code="customer_request", note="asked for Ben", actor="sue"
    )
    lead.refresh_from_db()
    manual = lead.decision["manual"]
    assert {k: manual[k] for k in ("action", "rep_id", "code", "reason", "counts", "by", "booking")} == {
        "action": "routed_by_hand",
        "rep_id": ben.pk,
        "code": "customer_request",
        "reason": "asked for Ben",
        "counts": True,
        "by": "sue",
        "booking": None,
    }
    assert lead.decision["history"] == [manual] and lead.decision["rules"] == []
    entry = LedgerEntry.objects.get(pool=sales, rep=ben)
    assert (entry.kind, entry.delta, entry.booking_id) == ("assigned", 1.0, None)
    assert entry.reason == f"customer_request: asked for Ben (lead #{lead.pk} routed by hand)"
    assert counts(sales)[ben.pk] == 1 and counts(sales)[reps["ana"].pk] == 0


def test_account_owner_does_not_count(lead, reps, sales):
    lead_route_by_hand(lead_id=lead.pk, rep_id=reps["cara"].pk, code="account_owner")
    lead.refresh_from_db()
    assert lead.decision["manual"]["counts"] is False and lead.decision["manual"]["code"] == "account_owner"
    assert not LedgerEntry.objects.filter(pool=sales).exists()
    assert set(counts(sales).values()) == {0}


# --- the credit moves with the lead: the rep it leaves loses it (before, one lead counted for two reps)


def charged(pool) -> dict[int, float]:
    return {rep_id: n for rep_id, n in counts(pool).items() if n}


def test_routing_a_lead_by_hand_again_moves_its_credit(lead, reps, sales):
    """An admin routes a lead (not booked yet) by hand to Ben ("rebalance"), then changes their mind and
    routes it to Cara ("customer_request"). Ben's +1 stayed and Cara got +1: one lead counted twice, and
    Ben was pushed back in the rotation for a lead he no longer had. As for a booking reassigned, the rep
    the lead leaves loses the credit: a -1 entry dated at his charge, so it leaves the same period."""
    ben, cara = reps["ben"], reps["cara"]
    lead_route_by_hand(lead_id=lead.pk, rep_id=ben.pk, code="rebalance", note="Ben is idle")
    lead_route_by_hand(lead_id=lead.pk, rep_id=cara.pk, code="customer_request", note="asked")
    assert charged(sales) == {cara.pk: 1}
    first = LedgerEntry.objects.get(rep=ben, kind="assigned")
    taken = LedgerEntry.objects.get(kind="reassigned_from")
    assert (taken.rep, taken.pool, taken.delta, taken.booking_id) == (ben, sales, -1.0, None)
    assert taken.created_at == first.created_at
    assert taken.reason == (
        f"lead #{lead.pk} routed by hand to Cara on 2026-03-02 07:00 UTC: customer_request: asked"
    )
    lead.refresh_from_db()
    assert [h["credit_from"] for h in lead.decision["history"]] == [None, ben.pk]
    lead_route_by_hand(lead_id=lead.pk, rep_id=ben.pk, code="rebalance", note="back to Ben")
    assert charged(sales) == {ben.pk: 1}


def test_an_instant_lead_routed_by_hand_is_charged_once(settings, clock, rules, reps, sales):
    """The phone system routes an inbound caller instantly (``POST /api/v1/route``): Ben gets the lead and
    an ``assigned`` +1 without a booking. Ben cannot take it, so an admin routes the lead by hand to Cara
    ("rep_unavailable", a counting code). Ben kept his +1 and Cara got one too."""
    key = "instant-route-manual-key-0123456789"
    settings.INSTANT_ROUTE_API_KEYS = [key]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    clock.move_to(dt.datetime(2026, 3, 2, 13, 5, tzinfo=dt.UTC))  # Monday 14:05 in Berlin: Ben and Cara work
    answers = {"size": "11-50"}
    response = client.post("/api/v1/route", lead_body(meeting_type="demo", answers=answers), format="json")
    assert response.status_code == 200, response.json()
    first = response.json()["rep"]["id"]
    other = reps["cara"] if first == reps["ben"].pk else reps["ben"]
    lead_id = response.json()["lead_id"]
    lead_route_by_hand(lead_id=lead_id, rep_id=other.pk, code="rep_unavailable", note="on a call")
    assert charged(sales) == {other.pk: 1}
    assert Lead.objects.get(pk=lead_id).decision["manual"]["credit_from"] == first


def test_account_owner_leaves_the_credit_with_its_holder_until_a_counting_code_moves_it(lead, reps, sales):
    """``account_owner`` does not count: the rep who held the credit keeps it and the owner is not charged
    (as for a booking). A counting code after it takes the credit from the rep who kept it."""
    ben, cara, ana = reps["ben"], reps["cara"], reps["ana"]
    lead_route_by_hand(lead_id=lead.pk, rep_id=ben.pk, code="rebalance", note="Ben is idle")
    lead_route_by_hand(lead_id=lead.pk, rep_id=cara.pk, code="account_owner")
    assert charged(sales) == {ben.pk: 1}
    lead_route_by_hand(lead_id=lead.pk, rep_id=ana.pk, code="skill_mismatch", note="needs German")
    assert charged(sales) == {ana.pk: 1}
    assert LedgerEntry.objects.get(kind="reassigned_from").rep == ben


def test_a_lead_moved_in_a_later_fairness_period_leaves_the_earlier_one(lead, reps, sales, clock):
    """Daily fairness: Ben got the lead by hand on Sunday, Cara on Monday. Ben loses Sunday's credit, not
    one of Monday's (a -1 in Monday would have given him an extra lead today)."""
    sales.fairness_period = "day"
    sales.save()
    ben, cara = reps["ben"], reps["cara"]
    clock.move_to(NOW - dt.timedelta(days=1))
    lead_route_by_hand(lead_id=lead.pk, rep_id=ben.pk, code="rebalance", note="Ben is idle")
    clock.move_to(NOW)
    lead_route_by_hand(lead_id=lead.pk, rep_id=cara.pk, code="customer_request", note="asked")
    assert charged(sales) == {cara.pk: 1}


def test_bad_code_missing_note_or_stranger_is_refused(lead, reps):
    with pytest.raises(InvalidInput) as bad:
        lead_route_by_hand(lead_id=lead.pk, rep_id=reps["ben"].pk, code="whim")
    assert "code" in bad.value.extra["errors"]
    with pytest.raises(InvalidInput) as silent:
        lead_route_by_hand(lead_id=lead.pk, rep_id=reps["ben"].pk, code="other")
    assert "note" in silent.value.extra["errors"]
    with pytest.raises(ManualRouteNotPossible):
        lead_route_by_hand(lead_id=lead.pk, rep_id=make_rep("Stranger").pk, code="rebalance")
    lead.refresh_from_db()
    assert "manual" not in lead.decision and not LedgerEntry.objects.exists()


def test_a_booked_lead_moves_its_booking(api, lead, reps, sales):
    booking = booked_lead(api, lead)
    host = booking.hosts.get(active=True).rep_id
    target = reps["cara"] if host == reps["ben"].pk else reps["ben"]
    lead_route_by_hand(lead_id=lead.pk, rep_id=target.pk, code="skill_mismatch", note="speaks French")
    booking.refresh_from_db()
    lead.refresh_from_db()
    assert booking.hosts.get(active=True).rep_id == target.pk
    assert booking.decision["history"][-1]["code"] == "skill_mismatch"
    assert lead.decision["manual"]["booking"] == booking.pk
    kinds = {(e.rep_id, e.kind, e.delta) for e in LedgerEntry.objects.filter(booking=booking)}
    assert {(host, "reassigned_from", -1.0), (target.pk, "reassigned_to", 1.0)} <= kinds
    assert not LedgerEntry.objects.filter(kind="adjusted").exists()  # the booking carries the credit
    assert counts(sales)[target.pk] == 1 and counts(sales)[host] == 0


def test_a_lead_with_a_past_booking_is_refused(api, lead, reps, clock):
    booking = booked_lead(api, lead)
    host = booking.hosts.get(active=True).rep_id
    target = reps["cara"] if host == reps["ben"].pk else reps["ben"]
    clock.move_to(booking.start + dt.timedelta(minutes=5))
    with pytest.raises(BookingInPast):
        lead_route_by_hand(lead_id=lead.pk, rep_id=target.pk, code="rebalance")
    lead.refresh_from_db()
    assert "manual" not in lead.decision


# --- admin


def test_admin_page_routes_by_hand(staff, lead, reps):
    make_rep("Stranger")
    change = reverse("admin:leads_lead_change", args=[lead.pk])
    url = reverse("admin:leads_lead_route", args=[lead.pk])
    assert url in staff.get(change).content.decode()
    action = staff.post(
        reverse("admin:leads_lead_changelist"),
        {"action": "route_by_hand_action", "_selected_action": [lead.pk]},
    )
    assert action.status_code == 302 and action["Location"] == url
    page = staff.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="account_owner"' in html and "Ben" in html
    assert "Stranger" not in html
    silent = staff.post(url, {"rep": reps["ben"].pk, "code": "other", "note": ""})
    assert silent.status_code == 200 and silent.context["form"].errors["note"]
    done = staff.post(url, {"rep": reps["ben"].pk, "code": "rebalance", "note": "Ana is full"})
    assert done.status_code == 302 and done["Location"] == change
    lead.refresh_from_db()
    assert lead.decision["manual"]["by"] == "boss" and lead.decision["manual"]["code"] == "rebalance"
    assert LedgerEntry.objects.get(rep=reps["ben"]).reason.startswith("rebalance: Ana is full")


def test_admin_page_shows_booking_errors(staff, api, lead, reps, clock):
    booking = booked_lead(api, lead)
    host = booking.hosts.get(active=True).rep_id
    target = reps["cara"] if host == reps["ben"].pk else reps["ben"]
    clock.move_to(booking.start + dt.timedelta(minutes=5))
    url = reverse("admin:leads_lead_route", args=[lead.pk])
    response = staff.post(url, {"rep": target.pk, "code": "rebalance", "note": ""})
    assert response.status_code == 200
    assert BookingInPast.default_detail in str(response.context["form"].non_field_errors())
