"""Issue 7, supervisor override: reassigning a booking with a reason code (the code decides whether it counts
for fairness, audited in the decision history and the ledger), past bookings refused, the admin form, and
the routing rules inline on the meeting type admin."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from booking.errors import BookingInPast, InvalidInput
from booking.models import Booking
from booking.services import booking_reassign
from calendars.models import BusyInterval
from leads.models import RoutingRule
from routing.core import Interval
from routing.models import LedgerEntry, PoolMember
from routing.overrides import OverrideCode
from routing.selectors import load_pool_state
from tests.booking.booking_factories import NOW, body, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"
COUNTING = [c for c in OverrideCode.values if c != OverrideCode.ACCOUNT_OWNER]


@pytest.fixture
def trio(api, meeting_type, rep):
    """A booking hosted by one of three pool members; returns (booking, {rep id: member})."""
    for name in ("Bo", "Cy"):
        PoolMember.objects.create(pool=meeting_type.pool, rep=make_rep(name), rank=1)
    created = api.post(URL, body(), format="json").json()
    booking = Booking.objects.get(pk=created["id"])
    members = {m.rep_id: m for m in PoolMember.objects.filter(pool=meeting_type.pool)}
    return booking, members


def counts(pool) -> dict[int, float]:
    """The fairness counts the router sees (``routing.ledger``)."""
    state = load_pool_state(pool, now=NOW, window=Interval(NOW, NOW + dt.timedelta(hours=1)))
    return {m.rep.rep_id: m.count for m in state.spec.members}


def others(booking, members) -> list:
    host = booking.hosts.get(active=True).rep_id
    return [m for rid, m in sorted(members.items()) if rid != host]


def ledger(booking) -> set:
    return {(e.rep_id, e.kind, e.delta, e.reason) for e in LedgerEntry.objects.filter(booking=booking)}


@pytest.mark.parametrize("code", OverrideCode.values)
def test_each_code_decides_the_fairness_effect(trio, code):
    booking, members = trio
    source = booking.hosts.get(active=True).rep_id
    target = others(booking, members)[0]
    assert counts(booking.pool)[source] == 1 and counts(booking.pool)[target.rep_id] == 0
    booking_reassign(booking_id=booking.pk, to_member_id=target.pk, code=code, reason="asked", actor="sue")
    booking.refresh_from_db()
    moved = code != OverrideCode.ACCOUNT_OWNER
    after = counts(booking.pool)
    assert (after[source], after[target.rep_id]) == ((0, 1) if moved else (1, 0))
    step = 1.0 if moved else 0.0
    assert {
        (source, "reassigned_from", -step, f"{code}: asked"),
        (target.rep_id, "reassigned_to", step, f"{code}: asked"),
    } <= ledger(booking)
    entry = booking.decision["history"][-1]
    assert {k: entry[k] for k in ("action", "code", "reason", "counts", "by", "to")} == {
        "action": "reassigned",
        "code": code,
        "reason": "asked",
        "counts": moved,
        "by": "sue",
        "to": target.rep_id,
    }
    assert booking.hosts.get(active=True).rep_id == target.rep_id  # the booking moves either way


@pytest.mark.parametrize("code", [OverrideCode.ACCOUNT_OWNER, OverrideCode.REBALANCE])
def test_the_simulators_ledger_history_applies_the_code_like_the_live_ledger(trio, code):
    from insights.selectors import current_policy

    booking, members = trio
    source = booking.hosts.get(active=True).rep_id
    target = others(booking, members)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=target.pk, code=code, reason="asked", actor="sue")
    start = NOW + dt.timedelta(minutes=1)
    policy = current_policy(booking.pool, start=start, end=start + dt.timedelta(days=1), replayed=[])
    history = {rid: len(policy.ledger_events.get(rid, [])) for rid in members}
    moved = code != OverrideCode.ACCOUNT_OWNER
    assert (history[source], history[target.rep_id]) == ((0, 1) if moved else (1, 0))
    assert history == counts(booking.pool)


def test_reason_alone_stays_compatible_and_counts(trio):
    booking, members = trio
    target = others(booking, members)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=target.pk, reason="vacation")
    booking.refresh_from_db()
    assert booking.decision["history"][-1]["code"] == "other"
    assert LedgerEntry.objects.get(booking=booking, kind="reassigned_to").reason == "other: vacation"


def test_counting_override_after_a_non_counting_one_moves_the_kept_credit(trio):
    booking, members = trio
    first = booking.hosts.get(active=True).rep_id
    second, third = others(booking, members)
    booking_reassign(booking_id=booking.pk, to_member_id=second.pk, code="account_owner", reason="owner")
    booking_reassign(booking_id=booking.pk, to_member_id=third.pk, code="rebalance")
    assert counts(booking.pool) == {first: 0, second.rep_id: 0, third.rep_id: 1}
    sums: dict[int, float] = {}
    for e in LedgerEntry.objects.filter(booking=booking):
        sums[e.rep_id] = sums.get(e.rep_id, 0.0) + e.delta
    # the ledger explains the counts: assigned +1, then the credit followed the counting override only
    assert {rid: sums.get(rid, 0.0) for rid in (first, second.rep_id, third.rep_id)} == {
        first: 0.0,
        second.rep_id: 0.0,
        third.rep_id: 1.0,
    }


def test_reschedule_after_a_non_counting_override_moves_the_kept_credit(api, meeting_type, rep):
    for name in ("Bo", "Cy"):
        PoolMember.objects.create(pool=meeting_type.pool, rep=make_rep(name), rank=1)
    made = api.post(URL, body(), format="json").json()
    booking = Booking.objects.get(pk=made["id"])
    members = {m.rep_id: m for m in PoolMember.objects.filter(pool=meeting_type.pool)}
    first = booking.hosts.get(active=True).rep_id
    second = others(booking, members)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=second.pk, code="account_owner")
    assert counts(booking.pool)[first] == 1 and sum(counts(booking.pool).values()) == 1
    later = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)  # 11:00 in Berlin: the owner is busy then
    BusyInterval.objects.create(rep_id=second.rep_id, start=later, end=later + dt.timedelta(hours=1))
    moved = api.post(
        f"/api/v1/bookings/{made['manage_token']}/reschedule", {"start": later.isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.json()
    host = booking.hosts.get(active=True).rep_id
    after = counts(booking.pool)
    assert host not in (first, second.rep_id)  # routed again: the least loaded free member
    assert after[host] == 1 and sum(after.values()) == 1  # the kept credit moved; nobody counts it twice


def test_non_counting_there_and_back_leaves_the_credit_with_the_first_host(trio):
    booking, members = trio
    first = booking.hosts.get(active=True).rep_id
    second = others(booking, members)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=second.pk, code="account_owner")
    booking_reassign(booking_id=booking.pk, to_member_id=members[first].pk, code="account_owner")
    after = counts(booking.pool)
    assert (after[first], after[second.rep_id]) == (1, 0)


def test_unknown_code_or_other_without_note_is_refused(trio):
    booking, members = trio
    target = others(booking, members)[0]
    with pytest.raises(InvalidInput) as bad:
        booking_reassign(booking_id=booking.pk, to_member_id=target.pk, code="whim", reason="x")
    assert "code" in bad.value.extra["errors"]
    with pytest.raises(InvalidInput) as silent:
        booking_reassign(booking_id=booking.pk, to_member_id=target.pk, code="other", reason="  ")
    assert "reason" in silent.value.extra["errors"]
    assert not LedgerEntry.objects.filter(booking=booking, kind="reassigned_to").exists()


def test_past_booking_is_refused(trio, clock):
    booking, members = trio
    target = others(booking, members)[0]
    clock.move_to(booking.start + dt.timedelta(minutes=1))
    with pytest.raises(BookingInPast) as past:
        booking_reassign(booking_id=booking.pk, to_member_id=target.pk, code="rebalance")
    assert past.value.status == 409 and past.value.code == "booking_in_past"
    assert not LedgerEntry.objects.filter(booking=booking, kind="reassigned_to").exists()


# --- admin


def test_admin_form_renders_codes_and_posts_a_non_counting_override(admin_client, trio):
    booking, members = trio
    source = booking.hosts.get(active=True).rep_id
    url = reverse("admin:booking_booking_reassign", args=[booking.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="code"' in html and 'value="account_owner"' in html and 'name="reason"' in html
    target = others(booking, members)[0]
    response = admin_client.post(
        url, {"to_member": target.pk, "code": "account_owner", "reason": "owns acme.io"}
    )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.decision["history"][-1]["code"] == "account_owner"
    assert booking.decision["history"][-1]["by"] == "admin"
    assert {e.delta for e in LedgerEntry.objects.filter(booking=booking).exclude(kind="assigned")} == {0.0}
    assert counts(booking.pool)[source] == 1
    changed = admin_client.get(reverse("admin:booking_booking_change", args=[booking.pk])).content.decode()
    assert "account_owner" in changed and "owns acme.io" in changed


def test_admin_form_needs_a_note_for_other_and_refuses_past_bookings(admin_client, trio, clock):
    booking, members = trio
    url = reverse("admin:booking_booking_reassign", args=[booking.pk])
    target = others(booking, members)[0]
    silent = admin_client.post(url, {"to_member": target.pk, "code": "other", "reason": ""})
    assert silent.status_code == 200 and silent.context["form"].errors["reason"]
    unknown = admin_client.post(url, {"to_member": target.pk, "code": "whim", "reason": "x"})
    assert unknown.status_code == 200 and unknown.context["form"].errors["code"]
    clock.move_to(booking.start + dt.timedelta(minutes=1))
    past = admin_client.post(url, {"to_member": target.pk, "code": "rebalance", "reason": ""})
    assert past.status_code == 200
    assert BookingInPast.default_detail in str(past.context["form"].non_field_errors())
    assert booking.hosts.get(active=True).rep_id != target.rep_id


# --- routing rules inline on the meeting type admin


def _form_data(response) -> dict:
    """The change page's own values as POST data (main form and every inline formset)."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management[name].html_name: management[name].value() for name in management.fields})
        forms.extend(formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is True:
                data[form[name].html_name] = "on"
            elif value is not None and value is not False:
                data[form[name].html_name] = value
    return data


def test_rules_inline_renders_and_saves_a_rule(admin_client, meeting_type):
    RoutingRule.objects.create(meeting_type=meeting_type, order=20, name="Catch-all")
    RoutingRule.objects.create(meeting_type=meeting_type, order=10, name="Big ones", pool=meeting_type.pool)
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "routing_rules-TOTAL_FORMS" in html
    assert html.index('value="Big ones"') < html.index('value="Catch-all"')  # ordered by `order`
    data = _form_data(page)
    prefix = "routing_rules"
    n = int(data[f"{prefix}-TOTAL_FORMS"])
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": n + 1,
            f"{prefix}-{n}-order": 5,
            f"{prefix}-{n}-name": "Enterprise",
            f"{prefix}-{n}-active": "on",
            f"{prefix}-{n}-conditions": '{"all": [{"field": "answers.seats", "op": "gte", "value": 100}]}',
            f"{prefix}-{n}-outcome": "route_pool",
            f"{prefix}-{n}-required_skills": '{"enterprise": 7}',
            f"{prefix}-{n}-fallback_after_days": 7,
            f"{prefix}-{n}-meeting_type": meeting_type.pk,
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context and (
        response.context["adminform"].form.errors,
        response.context["inline_admin_formsets"][0].formset.non_form_errors(),
    )
    rule = RoutingRule.objects.get(name="Enterprise")
    assert rule.meeting_type == meeting_type and rule.required_skills == {"enterprise": 7}
    assert list(meeting_type.routing_rules.order_by("order").values_list("name", flat=True)) == [
        "Enterprise",
        "Big ones",
        "Catch-all",
    ]
    # the model's validation applies in the inline too
    data[f"{prefix}-{n}-name"] = "Broken"
    data[f"{prefix}-{n}-conditions"] = '{"all": [{"field": "answers.seats", "op": "nope", "value": 1}]}'
    broken = admin_client.post(url, data)
    assert broken.status_code == 200 and not RoutingRule.objects.filter(name="Broken").exists()
