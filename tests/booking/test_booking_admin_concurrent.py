"""What staff do to bookings and leads in the Django admin while other things happen at the same time: a bulk
outcome action while another admin records a deal, two admins reassigning the same booking from pages opened
together, routing a lead by hand as the prospect books it, a staff user with leads-only permissions, and
crafted action posts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

import booking.admin as booking_admin
import leads.manual as manual
from booking import outbox
from booking.errors import BookingError
from booking.models import Booking, BookingOutcome
from booking.services import booking_create, booking_reassign
from leads.manual import lead_route_by_hand
from leads.models import Lead
from routing.core import Interval
from routing.models import PoolMember
from routing.selectors import load_pool_state
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

HIDDEN = re.compile(r'<input type="hidden" name="(\w+)"(?: value="([^"]*)")?')


@pytest.fixture
def trio():
    """A ``first_available`` pool of Ana, Ben and Cy (Berlin, 9–17): (pool, meeting type, [reps])."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben, cy])
    return pool, make_meeting_type(pool), [ana, ben, cy]


def book(meeting_type, start=START, email="ada@example.org") -> Booking:
    made = booking_create(
        meeting_type=meeting_type, start=start, name="Ada", email=email, timezone="UTC", now=NOW
    )
    return Booking.objects.get(pk=made.body["id"])


def host(booking: Booking) -> int:
    return booking.hosts.get(active=True).rep_id


def member(pool, rep_id: int) -> PoolMember:
    return PoolMember.objects.get(pool=pool, rep_id=rep_id)


def counts(pool) -> dict[int, float]:
    """The fairness counts the router sees."""
    state = load_pool_state(pool, now=NOW, window=Interval(NOW, NOW + dt.timedelta(hours=1)))
    return {m.rep.rep_id: m.count for m in state.spec.members}


def make_lead(meeting_type, pool) -> Lead:
    return Lead.objects.create(
        meeting_type=meeting_type,
        email="pat@acme.io",
        name="Pat",
        domain="acme.io",
        timezone="Europe/Berlin",
        outcome=Lead.Outcome.ROUTED,
        pool=pool,
        decision={"rules": []},
    )


# --- a bulk outcome action while another admin records a deal -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bulk_record_held_keeps_a_won_deal_recorded_while_it_runs(trio, admin_client, clock, monkeypatch):
    """Admin A selects yesterday's bookings and runs "Record outcome: held"; at the same moment admin B, on
    one booking's page, records it as won with the deal amount (50,000). The bulk action promises to leave
    a booking recorded as won alone (booking/admin.py:_record), but it reads the recorded outcomes once,
    before its loop, outside any lock (booking/admin.py:313), then writes each booking in its own
    transaction: B's "won" is replaced by a plain "held", the amount gone from the outcome (the CRM hook
    gets "held" for a won deal), and A is told "Recorded held for 2 booking(s)"."""
    _, meeting_type, _ = trio
    first = book(meeting_type)
    second = book(meeting_type, START + dt.timedelta(hours=1), email="bo@example.org")
    clock.move_to(second.end + dt.timedelta(minutes=5))
    real = booking_admin.booking_outcome_record
    calls = []

    def while_admin_b_records_won(**kwargs):
        if not calls:  # admin B's save lands once the bulk action has read the outcomes
            real(booking=Booking.objects.get(pk=second.pk), kind="won", amount="50000")
        calls.append(kwargs["booking"].pk)
        return real(**kwargs)

    monkeypatch.setattr(booking_admin, "booking_outcome_record", while_admin_b_records_won)
    url = reverse("admin:booking_booking_changelist")
    admin_client.post(url, {"action": "record_held", "_selected_action": [first.pk, second.pk]})
    outcome = BookingOutcome.objects.get(booking=second)
    assert (outcome.kind, str(outcome.amount)) == ("won", "50000.00"), (
        f"the won deal recorded meanwhile became {outcome.kind!r} with amount {outcome.amount}"
    )


# --- two admins reassigning one booking ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_reassign_page_opened_before_another_admins_reassignment_does_not_silently_undo_it(
    trio, admin_client, clock
):
    """Ana's booking shows in "needs attention". Admins A and B both open its reassign page ("Current host:
    Ana"). A gives it to Ben; B, a minute later, submits the page still showing Ana, choosing Cy. B's post
    carries nothing of what B saw (the single host's ``from_rep`` is a hidden field without a value,
    booking/admin.py:148-150; no version), so ``booking_reassign`` takes "the only host" now (Ben,
    booking/services/reassign.py:195) and moves it from Ben to Cy: A's decision is undone without a word,
    the ledger records a move "from Ben" B never chose, the prospect gets two "your host changed" e-mails,
    and B is told "Reassigned to Cy" as if from Ana. The page should refuse: the booking changed since it
    was opened."""
    pool, meeting_type, reps = trio
    booking = book(meeting_type)
    ana = host(booking)
    ben, cy = [r.pk for r in reps if r.pk != ana]
    url = reverse("admin:booking_booking_reassign", args=[booking.pk])
    page = admin_client.get(url)  # admin B opens the page
    assert page.status_code == 200
    posted = {name: value or "" for name, value in HIDDEN.findall(page.content.decode())}
    booking_reassign(booking_id=booking.pk, to_member_id=member(pool, ben).pk, code="rebalance", actor="A")
    assert host(booking) == ben
    posted.update({"to_member": member(pool, cy).pk, "code": "rebalance", "reason": "Ana is off sick"})
    response = admin_client.post(url, posted)  # admin B submits the page as it was shown
    assert host(booking) == ben, (
        f"admin B's page (showing Ana) moved the booking from Ben, just given it by admin A, to Cy "
        f"(answer {response.status_code})"
    )


# --- routing a lead by hand -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_routing_a_lead_by_hand_as_the_prospect_books_moves_the_booking_or_refuses(trio, clock, monkeypatch):
    """An admin routes a lead by hand to Ben ("rebalance", a counting code) at the moment the prospect
    books with the lead's route token (Ana gets the booking). ``lead_route_by_hand`` decides whether the
    lead has a booking to move from a read of the lead without a lock (leads/manual.py:84,97), before its
    transaction locks the lead (leads/manual.py:104-105) and never looks again: the booking, linked
    meanwhile, stays with Ana, Ben is charged a lead he never gets, the lead counts twice in the pool's
    fairness, and the lead's record and the admin's message say "routed by hand to Ben" while the meeting
    is Ana's. It should either move the booking or refuse (the lead changed meanwhile)."""
    pool, meeting_type, reps = trio
    lead = make_lead(meeting_type, pool)
    real = manual.override_counts
    made = []

    def while_the_prospect_books(code):
        if not made:  # after the lead was read, before its transaction: the prospect's booking commits
            booking = book(meeting_type)
            Lead.objects.filter(pk=lead.pk, booking__isnull=True).update(booking=booking)
            made.append(booking)
        return real(code)

    monkeypatch.setattr(manual, "override_counts", while_the_prospect_books)
    ana = reps[0].pk  # rank 0, free at 10:00 Berlin: first_available's next-up host
    ben = reps[1]
    try:
        lead_route_by_hand(lead_id=lead.pk, rep_id=ben.pk, code="rebalance", note="Ana is full")
        refused = False
    except BookingError:
        refused = True
    (booking,) = made
    assert refused or host(booking) == ben.pk, (
        f"the admin was told the lead went to Ben, but its booking stays with rep {host(booking)} "
        f"(Ana is {ana}); fairness counts now {counts(pool)}"
    )
    assert sum(counts(pool).values()) == 1, f"one lead counted {sum(counts(pool).values())} times"


@pytest.mark.django_db
def test_a_staff_user_who_may_only_change_leads_cannot_move_a_booking(trio, client, clock):
    """A marketing-ops staff user is given "view lead" and "change lead" only: no permission on bookings
    at all (the booking list and its reassign page are a 403 for them). The lead's "route by hand" page
    asks only for the lead's change permission (leads/admin.py:282) and, for a booked lead, reassigns its
    booking (leads/manual.py:97-103): the user moves a sales rep's confirmed meeting to another rep, the
    prospect and both hosts are e-mailed and the fairness ledger moves, through a permission they were
    never given."""
    pool, meeting_type, reps = trio
    lead = make_lead(meeting_type, pool)
    booking = book(meeting_type)
    Lead.objects.filter(pk=lead.pk).update(booking=booking)
    first = host(booking)
    target = next(r for r in reps if r.pk != first)
    user = User.objects.create_user("marketing", "m@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_lead", "change_lead"]))
    client.force_login(user)
    assert client.get(reverse("admin:booking_booking_reassign", args=[booking.pk])).status_code == 403
    url = reverse("admin:leads_lead_route", args=[lead.pk])
    response = client.post(url, {"rep": target.pk, "code": "rebalance", "note": "x"})
    assert host(booking) == first, (
        f"a user without any booking permission reassigned the booking to {target.name} "
        f"(answer {response.status_code})"
    )
    assert not outbox_rescheduled(booking)


def outbox_rescheduled(booking: Booking) -> bool:
    return booking.outbox.filter(event="booking.rescheduled").exists()


# --- crafted action posts ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("admin:booking_booking_changelist", "record_held"),
        ("admin:booking_booking_changelist", "delete_selected"),
        ("admin:leads_lead_changelist", "route_by_hand_action"),
    ],
)
def test_an_action_posted_with_a_selection_that_is_no_id_is_not_a_500(
    trio, admin_client, clock, changelist, action
):
    """A list action posted with a ``_selected_action`` that is no id (a hand-edited or replayed form, a
    scanner) is a 500, a server error mailed to the admins: the admin filters the list by
    ``pk__in=[…]`` with the raw values (Django's ``response_action``), and the id field raises ValueError
    ("Field 'id' expected a number"). The project answers every other mangled admin input with a 4xx or the
    list (config/admin_guards.py); this one should be the list with "no items selected" or a 400."""
    _, meeting_type, _ = trio
    book(meeting_type)
    assert "retry" not in outbox.sweep(now=NOW + dt.timedelta(days=3650))
    admin_client.raise_request_exception = False  # a 500 answered, as in production
    response = admin_client.post(reverse(changelist), {"action": action, "_selected_action": ["12abc"]})
    assert response.status_code < 500


@pytest.mark.django_db(transaction=True)
def test_a_reassign_page_refused_as_stale_can_be_sent_again_as_it_now_reads(admin_client, clock):
    """Admin B's reassign page was opened before admin A gave Ana's booking to Ben; B submits it (Cy) and
    is refused ("This booking changed since you opened this page"). The refusal page read "Current host(s):
    Ben", but its bound form re-rendered the hidden ``sequence`` and ``from_rep`` B first posted: whatever B
    did on it (send it again, or reload it) was refused again, forever. It carries what it shows now."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben, cy])
    booking = book(make_meeting_type(pool))
    assert host(booking) == ana.pk
    url = f"/admin/booking/booking/{booking.pk}/reassign/"
    page = admin_client.get(url)  # admin B opens the page
    posted = {name: value or "" for name, value in HIDDEN.findall(page.content.decode())}
    booking_reassign(booking_id=booking.pk, to_member_id=member(pool, ben.pk).pk, code="rebalance", actor="A")
    posted.update({"to_member": member(pool, cy.pk).pk, "code": "rebalance", "reason": "Ana is off sick"})
    refused = admin_client.post(url, posted)
    text = refused.content.decode()
    assert "This booking changed since you opened this page" in text and "<strong>Ben" in text
    again = {name: value or "" for name, value in HIDDEN.findall(text)}  # the page as it now reads
    again.update({"to_member": member(pool, cy.pk).pk, "code": "rebalance", "reason": "Ana is off sick"})
    second = admin_client.post(url, again)
    assert host(booking) == cy.pk, "the refusal page showing Ben as host was refused again: " + (
        "stale page" if "This booking changed" in second.content.decode() else str(second.status_code)
    )
