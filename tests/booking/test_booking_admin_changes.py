"""Admin-side changes of bookings and their fairness accounting, as a demanding sales-ops admin uses them:
reassigning (urgent, across time zones, after the meeting type changed, odd admin URLs), outcomes, and the
ledger after chains of changes, and the alternatives of a reschedule the database refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.db import IntegrityError
from django.urls import reverse

from booking.errors import BookingError, BookingNotActive, ReassignNotPossible, SlotUnavailable
from booking.models import Booking, MeetingType
from booking.services import (
    booking_cancel,
    booking_create,
    booking_reassign,
    booking_reschedule,
    booking_set_outcome,
    locking,
    manage,
)
from calendars.models import BusyInterval
from routing import selectors
from routing.core import Interval
from routing.models import LedgerEntry, PoolMember
from routing.selectors import load_pool_state
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def book(meeting_type, start=START, email="ada@example.org") -> tuple[Booking, str]:
    made = booking_create(
        meeting_type=meeting_type, start=start, name="Ada", email=email, timezone="UTC", now=NOW
    )
    return Booking.objects.get(pk=made.body["id"]), made.body["manage_token"]


def member(pool, rep) -> PoolMember:
    return PoolMember.objects.get(pool=pool, rep=rep)


def host(booking) -> int:
    return booking.hosts.get(active=True).rep_id


def others(reps, *rep_ids) -> list:
    return [r for r in reps if r.pk not in rep_ids]


def counts(pool, now=NOW) -> dict[int, float]:
    """The fairness counts the router sees (``routing.ledger``)."""
    state = load_pool_state(pool, now=now, window=Interval(now, now + dt.timedelta(hours=1)))
    return {m.rep.rep_id: m.count for m in state.spec.members}


def ledger_sums(booking) -> dict[int, float]:
    """Per rep, the sum of the booking's ledger entries (the audit trail), zeros left out."""
    out: dict[int, float] = {}
    for e in LedgerEntry.objects.filter(booking=booking):
        out[e.rep_id] = out.get(e.rep_id, 0.0) + e.delta
    return {rid: v for rid, v in out.items() if v}


# --- reassignments of meetings as booked


def test_an_urgent_reassignment_inside_the_minimum_notice_is_possible(team):
    """The host calls in sick 30 minutes before the meeting (the meeting type's notice is 60 minutes; the
    config default is 240). docs/routing-rules.md: "An admin can reassign any **future** booking"; the
    "needs attention" filter exists "so that an admin can reassign them before the prospect finds nobody
    there". The prospect-facing booking window (it refused "Ben is not free then: notice.") does not apply
    to a meeting that already exists."""
    pool, meeting_type, reps = team
    booking, _ = book(meeting_type)
    target = others(reps, host(booking))[0]
    soon = booking.start - dt.timedelta(minutes=30)
    booking_reassign(
        booking_id=booking.pk,
        to_member_id=member(pool, target).pk,
        code="rep_unavailable",
        reason="sick",
        now=soon,
    )
    assert host(booking) == target.pk


def test_a_reassignment_to_a_free_rep_in_another_time_zone_is_not_refused_as_off_grid(clock):
    """Raj (Asia/Kolkata, working 09:00-18:00 local) is free at 09:00 UTC (14:30 his time). The meeting's
    time is fixed; the slot grid only says which starts are offered to prospects (it refused "Raj is not
    free then: off_grid.": 14:30 is not on Raj's local hourly grid)."""
    ana = make_rep("Ana")
    raj = make_rep("Raj", tz="Asia/Kolkata", hours=(9, 18))
    pool = make_pool("ranked", [ana, raj])
    meeting_type = make_meeting_type(pool, slot_interval_minutes=60)
    booking, _ = book(meeting_type)
    assert host(booking) == ana.pk
    booking_reassign(
        booking_id=booking.pk, to_member_id=member(pool, raj).pk, code="customer_request", now=NOW
    )
    assert host(booking) == raj.pk


def test_a_reassignment_after_the_meeting_type_was_shortened_does_not_double_book_the_new_host(team):
    """A 60-minute demo is booked 09:00-10:00; the team then shortens the meeting type to 30 minutes (the
    booking keeps its 09:00-10:00). Ben has another meeting 09:30-10:00. Reassigning the demo to Ben must be
    refused: he is busy for half of it (Ben was checked, and his time blocked, for the meeting type's
    *current* 30 minutes only: two meetings at 09:30)."""
    pool, meeting_type, reps = team
    MeetingType.objects.filter(pk=meeting_type.pk).update(duration_minutes=60)
    meeting_type.refresh_from_db()
    booking, _ = book(meeting_type)
    assert booking.end == START + dt.timedelta(hours=1)
    MeetingType.objects.filter(pk=meeting_type.pk).update(duration_minutes=30)
    target = others(reps, host(booking))[0]
    elsewhere = make_meeting_type(make_pool("round_robin", [target]))
    other, _ = book(elsewhere, start=START + dt.timedelta(minutes=30), email="zed@example.org")
    assert host(other) == target.pk
    with pytest.raises(ReassignNotPossible):
        booking_reassign(
            booking_id=booking.pk, to_member_id=member(pool, target).pk, code="rebalance", now=NOW
        )
    assert host(booking) != target.pk


def test_the_reassign_page_of_a_booking_id_that_is_not_a_number_is_a_404(team, admin_client):
    """/admin/booking/booking/abc/reassign/ (a mistyped or stale link) is a 404, as the admin's own pages
    answer such ids (it was a 500: "Field 'id' expected a number but got 'abc'")."""
    response = admin_client.get("/admin/booking/booking/abc/reassign/")
    assert response.status_code == 404


def test_a_booking_page_read_before_a_cancellation_and_posted_after_it_writes_nothing(team, admin_client):
    """The booking's admin page has nothing to edit: it shows no Save buttons, and a POST of a page read
    before the prospect cancelled leaves the cancellation in place (it wrote back the whole row as read:
    "confirmed", SEQUENCE 0, with no active host)."""
    import re

    pool, meeting_type, reps = team
    booking, token = book(meeting_type)
    url = reverse("admin:booking_booking_change", args=[booking.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    form.pop("csrfmiddlewaretoken", None)
    booking_cancel(token=token, now=NOW)
    assert admin_client.post(url, {**form, "_save": "Save"}).status_code == 302
    booking.refresh_from_db()
    assert (booking.status, booking.sequence) == ("cancelled", 1)


def test_the_outcome_shortcut_refuses_a_booking_that_has_not_started(team):
    """booking_set_outcome (the exported "admin shortcut" for completed / no-show) refuses tomorrow's
    meeting, as booking_outcome_record does (BookingNotStarted): it marked it a no-show and credited the host
    back, though the meeting was still on the calendars."""
    pool, meeting_type, reps = team
    booking, _ = book(meeting_type)
    first = host(booking)
    with pytest.raises(BookingError):
        booking_set_outcome(booking_id=booking.pk, status="no_show", now=NOW)
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    assert counts(booking.pool)[first] == 1


@pytest.mark.parametrize(
    "change", [{"horizon_days": 1}, {"slot_interval_minutes": 60}], ids=["horizon", "interval"]
)
def test_a_reassignment_ignores_booking_rules_changed_since_the_booking(team, change):
    """The horizon was shortened (the meeting is now beyond it) or the slot interval changed (its start is
    now off the grid): the meeting exists; an admin can still give it to a free member."""
    pool, meeting_type, reps = team
    later = START + dt.timedelta(days=3, minutes=30)  # Friday 09:30 UTC (10:30 in Berlin)
    booking, _ = book(meeting_type, start=later)
    MeetingType.objects.filter(pk=meeting_type.pk).update(**change)
    target = others(reps, host(booking))[0]
    booking_reassign(booking_id=booking.pk, to_member_id=member(pool, target).pk, code="rebalance", now=NOW)
    assert host(booking) == target.pk


def test_a_reassignment_still_refuses_a_rep_who_cannot_host_as_booked(team):
    """Not the booking rules, but the new rep's own: time off during the meeting, or a meeting of theirs
    inside the buffers the booking was made with (though the meeting type has no buffers any more)."""
    pool, meeting_type, reps = team
    MeetingType.objects.filter(pk=meeting_type.pk).update(buffer_after_minutes=15)
    meeting_type.refresh_from_db()
    booking, _ = book(meeting_type)
    MeetingType.objects.filter(pk=meeting_type.pk).update(buffer_after_minutes=0)
    away, busy = others(reps, host(booking))
    away.time_off.create(start=START - dt.timedelta(hours=1), end=START + dt.timedelta(hours=1))
    BusyInterval.objects.create(
        rep_id=busy.pk, start=booking.end + dt.timedelta(minutes=5), end=booking.end + dt.timedelta(hours=1)
    )
    for rep, why in ((away, "time off"), (busy, "busy")):
        with pytest.raises(ReassignNotPossible, match=why):
            booking_reassign(
                booking_id=booking.pk, to_member_id=member(pool, rep).pk, code="rebalance", now=NOW
            )


def test_a_reassignment_blocks_the_new_hosts_time_as_booked_not_as_the_meeting_type_is_now(team):
    """Booked for 60 minutes with 10-minute buffers; the meeting type is then cut to 30 minutes without
    buffers. The new host's row blocks what the old one did (09:50-10:10 with the buffers), so nobody can
    book that rep into the second half of the meeting."""
    pool, meeting_type, reps = team
    MeetingType.objects.filter(pk=meeting_type.pk).update(
        duration_minutes=60, buffer_before_minutes=10, buffer_after_minutes=10
    )
    meeting_type.refresh_from_db()
    booking, _ = book(meeting_type)
    old = booking.hosts.get(active=True)
    assert (old.blocked_start, old.blocked_end) == (
        START - dt.timedelta(minutes=10),
        START + dt.timedelta(minutes=70),
    )
    MeetingType.objects.filter(pk=meeting_type.pk).update(
        duration_minutes=30, buffer_before_minutes=0, buffer_after_minutes=0
    )
    target = others(reps, old.rep_id)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=member(pool, target).pk, code="rebalance", now=NOW)
    new = booking.hosts.get(active=True)
    assert new.rep_id == target.pk
    assert (new.blocked_start, new.blocked_end) == (old.blocked_start, old.blocked_end)


def test_the_outcome_shortcut_refuses_a_cancelled_booking_and_accepts_a_started_one(team):
    pool, meeting_type, reps = team
    booking, token = book(meeting_type)
    started = booking.start + dt.timedelta(minutes=5)
    assert booking_set_outcome(booking_id=booking.pk, status="completed", now=started).status == "completed"
    other, other_token = book(meeting_type, start=START + dt.timedelta(hours=1), email="bo@example.org")
    booking_cancel(token=other_token, now=NOW)
    with pytest.raises(BookingNotActive):
        booking_set_outcome(booking_id=other.pk, status="no_show", now=started + dt.timedelta(hours=2))


# --- a reschedule the database refuses (exclusion constraint): the 409's alternatives

RESCHEDULE_ALTERNATIVES = [f"2026-03-03T{t}:00+00:00" for t in ("09:30", "10:00", "10:30", "11:30", "12:00")]


def _one_rep_booking_at_eleven():
    rep = make_rep("Solo")
    meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
    booking, token = book(meeting_type, start=START + dt.timedelta(hours=2))
    return rep, meeting_type, booking, token


def test_a_reschedule_refused_by_the_database_offers_alternatives_without_the_bookings_own_time(
    clock, monkeypatch
):
    """When the host rows' write is refused as an overlap (on PostgreSQL the exclusion constraint, here
    stood in for), the booking has already been moved in memory to the refused start: the alternatives
    must still leave out the booking's real time (11:00), its own start, not offer it as a move."""
    _rep, _meeting_type, booking, token = _one_rep_booking_at_eleven()

    def refused(*args, **kwargs):
        raise IntegrityError('conflicting key value violates exclusion constraint "bookinghost_no_overlap"')

    monkeypatch.setattr(manage, "_move_hosts", refused)
    with pytest.raises(SlotUnavailable) as info:
        booking_reschedule(token=token, start=START, now=NOW)
    assert info.value.extra["alternatives"] == RESCHEDULE_ALTERNATIVES
    booking.refresh_from_db()
    assert booking.start == START + dt.timedelta(hours=2)


@pytest.mark.postgres
def test_the_exclusion_constraint_refusing_a_reschedule_offers_alternatives_around_the_real_time(
    clock, monkeypatch
):
    """The same with the real constraint: the rep's other meeting at 09:00 hidden from the reschedule's
    availability check (not from the alternatives), the database refuses the move to 09:00."""
    rep, meeting_type, booking, token = _one_rep_booking_at_eleven()
    other, _ = book(meeting_type, start=START, email="first@example.org")
    assert host(other) == rep.pk
    real = manage.load_pool_state

    def blind(*args, **kwargs):  # the reschedule's own check sees no host rows; the alternatives do
        with monkeypatch.context() as m:
            for name in ("HOSTS_SQL", "HOSTS_BUSY_SQL", "HOSTS_COUNTED_SQL"):
                m.setattr(selectors, name, getattr(selectors, name).replace("WHERE", "WHERE 1 = 0 AND"))
            return real(*args, **kwargs)

    monkeypatch.setattr(manage, "load_pool_state", blind)
    seen = []
    real_is_overlap = locking.is_overlap
    monkeypatch.setattr(locking, "is_overlap", lambda exc: seen.append(exc) or real_is_overlap(exc))
    with pytest.raises(SlotUnavailable) as info:
        booking_reschedule(token=token, start=START, now=NOW)
    assert len(seen) == 1 and "bookinghost_no_overlap" in str(seen[0])  # the database refused it
    assert info.value.extra["alternatives"] == RESCHEDULE_ALTERNATIVES
    booking.refresh_from_db()
    assert booking.start == START + dt.timedelta(hours=2)


# --- fairness through chains of changes, permissions


def test_reassign_then_reschedule_then_cancel_gives_the_credit_back_once_to_the_holder(team):
    pool, meeting_type, reps = team
    booking, token = book(meeting_type)
    first = host(booking)
    second = others(reps, first)[0]
    booking_reassign(booking_id=booking.pk, to_member_id=member(pool, second).pk, code="rebalance", now=NOW)
    later = START + dt.timedelta(hours=1)
    BusyInterval.objects.create(rep_id=second.pk, start=later, end=later + dt.timedelta(hours=1))
    booking_reschedule(token=token, start=later, now=NOW)
    third = host(booking)
    assert third != second.pk
    assert counts(pool)[third] == 1 and sum(counts(pool).values()) == 1
    booking_cancel(token=token, now=NOW)
    assert counts(pool) == {r.pk: 0 for r in reps}
    assert ledger_sums(booking) == {}


def test_reassigning_one_seat_of_a_group_booking_moves_only_that_seat_and_its_credit(clock):
    ae1, ae2, se1, se2 = make_rep("A1"), make_rep("A2"), make_rep("S1"), make_rep("S2")
    pool = make_pool("group", [ae1, ae2, se1, se2], roles=["ae", "ae", "se", "se"])
    booking, token = book(make_meeting_type(pool))
    seats = {h.role: h.rep_id for h in booking.hosts.filter(active=True)}
    spare = se2 if seats["se"] == se1.pk else se1
    booking_reassign(
        booking_id=booking.pk,
        to_member_id=member(pool, spare).pk,
        from_rep_id=seats["se"],
        code="customer_request",
        now=NOW,
    )
    assert {h.role: h.rep_id for h in booking.hosts.filter(active=True)} == {
        "ae": seats["ae"],
        "se": spare.pk,
    }
    after = counts(pool)
    assert (after[seats["ae"]], after[spare.pk], after[seats["se"]]) == (1, 1, 0)
    booking_cancel(token=token, now=NOW)
    assert sum(counts(pool).values()) == 0 and ledger_sums(booking) == {}


@pytest.mark.parametrize("perms", [(), ("view_booking",)])
def test_a_staff_user_without_change_permission_cannot_reassign(team, client, clock, perms):
    pool, meeting_type, reps = team
    booking, _ = book(meeting_type)
    first = host(booking)
    user = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)
    url = reverse("admin:booking_booking_reassign", args=[booking.pk])
    assert client.get(url).status_code == 403
    target = member(pool, others(reps, first)[0])
    posted = client.post(url, {"to_member": target.pk, "code": "rebalance", "reason": "x"})
    assert posted.status_code == 403
    assert host(booking) == first
