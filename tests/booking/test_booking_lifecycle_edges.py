"""The life of a booking after its creation at its edges: starts outside notice or horizon with a member on
leave, the fairness credit of a seat routed away and back after an override, and the prospect's invitation
when the meeting moves to a lead whose calendar invites. Each test failed before its fix; its docstring says
what a prospect or a rep saw."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from booking import outbox
from booking.models import Booking, OutboxMessage
from booking.services import booking_reassign
from calendars.models import BusyInterval
from routing.ledger import pool_ledger
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, START, body, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def post(api, url, data):
    return api.post(url, data, format="json")


def reschedule(api, token, start: str):
    return api.post(f"/api/v1/bookings/{token}/reschedule", {"start": start}, format="json")


def busy(rep, start):
    BusyInterval.objects.create(rep=rep, start=start, end=start + dt.timedelta(minutes=30))


def counts(pool, reps) -> dict[str, float]:
    """Each rep's fairness count in ``pool`` (what routing reads to pick the next-up rep)."""
    ledger = pool_ledger(pool, [r.pk for r in reps], now=NOW)
    return {r.name: ledger.raw.get(r.pk, 0) for r in reps}


# --- a start outside notice / horizon is answered as "taken" when the pool has an inactive member


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("2026-03-02T08:30:00+01:00", "This start is too soon (minimum notice)."),
        ("2026-05-04T10:00:00+02:00", "This start is too far ahead (booking horizon)."),
    ],
)
def test_a_reschedule_outside_notice_or_horizon_is_a_400_even_with_an_inactive_pool_member(
    api, meeting_type, start, message
):
    """A prospect moves their booking to a time that is too soon (the minimum notice passed while the manage
    page was open) or beyond the horizon. The API documents a 400 ``invalid`` on ``start`` with "This start
    is too soon (minimum notice)." / "…too far ahead…", which the page shows next to the time. But as soon
    as the pool has one inactive member (a rep on leave, or one whose calendar went stale and is withheld,
    which is made inactive the same way), the answer is a 409 ``slot_unavailable`` "That time is no longer
    available." — for the horizon case with no alternatives at all — so the prospect is told the time was
    taken by someone else, which is false. Was: ``booking.services.routing.invalid_start`` requires every
    skipped candidate's reason to be notice/horizon/off_grid, and the core reports an inactive member as
    ``inactive`` (checked before notice), so the set of reasons is never a subset."""
    token = post(api, URL, body()).json()["manage_token"]
    on_leave = make_rep("On leave")
    PoolMember.objects.create(pool=meeting_type.pool, rep=on_leave, rank=1, active=False)
    response = reschedule(api, token, start)
    assert response.status_code == 400, response.json()
    assert response.json()["errors"]["start"] == [message]


# --- the fairness credit of a seat is looked up in stale history: a booking counts for two reps


@pytest.fixture
def overridden_then_moved_back(api):
    """Ana, Bo and Cy in a first_available pool. Pat's booking goes to Ana; an admin hands it to Bo as the
    account owner (a non-counting override: Ana keeps the credit). Pat moves it to a time when Bo is busy:
    it is routed to Cy (the credit moves from Ana to Cy). Pat moves it again, to a time when only Bo is
    free: it is routed back to Bo, who is now charged for it like any routed booking."""
    ana, bo, cy = make_rep("Ana"), make_rep("Bo"), make_rep("Cy")
    pool = make_pool("first_available", [ana, bo, cy])
    make_meeting_type(pool, slug="fa")
    created = post(api, "/api/v1/meeting-types/fa/bookings", body(answers={})).json()
    token = created["manage_token"]
    booking = Booking.objects.get(pk=created["id"])
    assert created["hosts"][0]["name"] == "Ana"
    booking_reassign(
        booking_id=booking.pk, to_member_id=PoolMember.objects.get(rep=bo).pk, code="account_owner"
    )
    assert counts(pool, [ana, bo, cy]) == {"Ana": 1, "Bo": 0, "Cy": 0}
    day2 = START + dt.timedelta(days=1)
    busy(bo, day2)
    assert reschedule(api, token, day2.isoformat()).json()["hosts"][0]["name"] == "Cy"
    assert counts(pool, [ana, bo, cy]) == {"Ana": 0, "Bo": 0, "Cy": 1}
    day3 = START + dt.timedelta(days=2)
    busy(ana, day3)
    busy(cy, day3)
    assert reschedule(api, token, day3.isoformat()).json()["hosts"][0]["name"] == "Bo"
    assert counts(pool, [ana, bo, cy]) == {"Ana": 0, "Bo": 1, "Cy": 0}
    return pool, (ana, bo, cy), booking, token


def test_a_booking_routed_away_from_a_host_stops_counting_for_them(api, overridden_then_moved_back):
    """Pat moves the booking once more, to a time when Bo is busy; it goes to Cy. Bo no longer hosts it, yet
    Bo's fairness count stays at 1 while Cy's becomes 1 too: one booking charged to two reps, so Bo is
    skipped for the next leads as if he had had the meeting. Was: ``_credit_holder``
    (booking/services/manage.py) only follows "reassigned" history entries; it finds the old non-counting
    account-owner override Ana→Bo and decides Ana, not Bo, holds the credit — though the credit went to
    Bo when the reschedule routed the booking back to him. The reschedule then debits Ana (again) and
    writes Bo a delta-0 entry, which ``routing.ledger.override_hosts`` reads as "Bo's row keeps counting"."""
    pool, (ana, bo, cy), _booking, token = overridden_then_moved_back
    day4 = START + dt.timedelta(days=3)
    busy(ana, day4)
    busy(bo, day4)
    assert reschedule(api, token, day4.isoformat()).json()["hosts"][0]["name"] == "Cy"
    assert counts(pool, [ana, bo, cy]) == {"Ana": 0, "Bo": 0, "Cy": 1}


def test_a_counting_reassignment_after_a_reschedule_moves_the_credit_once(overridden_then_moved_back):
    """Same history, then an admin rebalances the booking from Bo to Cy (a counting override). Bo keeps a
    count of 1 for a booking he no longer hosts and Cy gets 1: the booking is charged twice. Same cause
    as above: ``booking_reassign`` asks ``_credit_holder``, which answered Ana (stale override)."""
    pool, (ana, bo, cy), booking, _token = overridden_then_moved_back
    BusyInterval.objects.filter(rep=cy).delete()  # Cy free at the booking's time
    booking_reassign(booking_id=booking.pk, to_member_id=PoolMember.objects.get(rep=cy).pk, code="rebalance")
    assert counts(pool, [ana, bo, cy]) == {"Ana": 0, "Bo": 0, "Cy": 1}


# --- a new lead whose provider invites: the prospect's e-mailed invitation is never moved nor cancelled


def _deliver_emails(mailoutbox, event: str) -> list:
    sent = len(mailoutbox)
    for row in OutboxMessage.objects.filter(event=event, handler__startswith="email.", status="pending"):
        outbox.deliver(message_id=row.pk, now=NOW + dt.timedelta(hours=1))
    return mailoutbox[sent:]


def _invitations(message) -> list[Calendar]:
    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def test_a_reschedule_to_a_lead_whose_calendar_invites_updates_the_prospects_emailed_invitation(
    api, mailoutbox
):
    """Pat books and is hosted by Ana, who has no writable calendar: Pat's confirmation carries Baton's
    iCalendar invitation (UID ``booking-…``), which Pat accepts into their calendar. Pat then moves the
    meeting to a time when Ana is busy; it is routed to Bo, whose bookings go to his Google calendar, so
    Google invites Pat to a new event (Google's own UID). Baton's "Updated" e-mail to Pat carries no
    invitation at all — neither a REQUEST with the new time nor a CANCEL for UID ``booking-…`` — so Pat's
    calendar keeps the old event at the old time next to Google's new one, and Pat may join at the wrong
    time. Was: ``booking.emails.send_prospect_email`` drops the .ics whenever the *current* lead's
    provider invites (``invitation_sent_by_provider(hosts[0])``), without regard to the invitation Baton
    itself sent earlier under the booking's UID (same for an admin's reassignment)."""
    from calendars.models import Calendar as RepCalendar
    from calendars.models import CalendarConnection

    ana, bo = make_rep("Ana"), make_rep("Bo")
    connection = CalendarConnection.objects.create(
        rep=bo, provider="google", account_email="bo@example.com", secret_blob="x", last_success_at=NOW
    )
    RepCalendar.objects.create(
        connection=connection, external_id="primary", can_write=True, receives_bookings=True
    )
    make_meeting_type(make_pool("first_available", [ana, bo]), slug="fa")
    created = post(api, "/api/v1/meeting-types/fa/bookings", body(answers={})).json()
    assert created["hosts"][0]["name"] == "Ana"
    (confirmation,) = [
        m for m in _deliver_emails(mailoutbox, "booking.confirmed") if m.to == ["pat@example.org"]
    ]
    (invitation,) = _invitations(confirmation)
    uid = str(invitation.walk("VEVENT")[0]["UID"])

    moved_to = START + dt.timedelta(days=1)
    busy(ana, moved_to)
    assert reschedule(api, created["manage_token"], moved_to.isoformat()).json()["hosts"][0]["name"] == "Bo"
    (update,) = [m for m in _deliver_emails(mailoutbox, "booking.rescheduled") if m.to == ["pat@example.org"]]
    events = [cal.walk("VEVENT")[0] for cal in _invitations(update)]
    assert [str(e["UID"]) for e in events] == [uid], "Pat's calendar keeps Baton's event at the old time"
    assert [str(cal["METHOD"]) for cal in _invitations(update)] == ["CANCEL"]
    assert "comes from Bo's calendar" in update.body
    assert events[0]["STATUS"] == "CANCELLED" or events[0].decoded("DTSTART") == moved_to
