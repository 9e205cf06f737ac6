"""What admins do with bookings in the Django admin: recording outcomes and reassigning need change
permission, the reassign page shows UTC as UTC, a bulk outcome does not overwrite a richer one, a booking's
calendar-event record and outcome cannot be deleted on their own, and the rep admin's "see and reassign"
link lists exactly the rep's bookings it counted, and a rescheduled booking's page opens. Each test failed
before its fix."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from booking import outbox
from booking.models import Booking, BookingOutcome
from booking.services import booking_create, booking_outcome_record
from calendars.models import BookingEvent
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, START

pytestmark = pytest.mark.django_db


def book(meeting_type, start=START, email="ada@example.org") -> Booking:
    result = booking_create(
        meeting_type=meeting_type, start=start, name="Ada", email=email, timezone="UTC", now=NOW
    )
    assert "retry" not in outbox.sweep(now=NOW + dt.timedelta(days=3650))
    return Booking.objects.get(pk=result.body["id"])


def staff_with(*codenames: str):
    user = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_a_view_only_staff_user_cannot_record_outcomes(team, client, clock):
    """booking/admin.py:310-316: the outcome actions declare no permission, so Django offers and runs them
    for anyone who may *view* bookings; they change the status and the hosts' fairness."""
    _, meeting_type, _ = team
    booking = book(meeting_type)
    clock.move_to(booking.end + dt.timedelta(minutes=5))
    client.force_login(staff_with("view_booking"))
    url = reverse("admin:booking_booking_changelist")
    assert client.get(url).status_code == 200  # may look at the list
    client.post(url, {"action": "record_no_show", "_selected_action": [booking.pk]})
    booking.refresh_from_db()
    assert booking.status == "confirmed", "a view-only user recorded a no-show"
    assert not BookingOutcome.objects.filter(booking=booking).exists()


def test_the_reassign_page_says_utc_for_the_booking_time_in_utc(team, admin_client, clock, settings):
    """templates/admin/booking/booking/reassign.html:17: ``booking.start|date`` renders in TIME_ZONE (the
    admin's display zone, README) but the page labels it "UTC"."""
    settings.TIME_ZONE = "America/New_York"
    _, meeting_type, _ = team
    booking = book(meeting_type)  # 09:00 UTC = 04:00 in New York
    page = admin_client.get(reverse("admin:booking_booking_reassign", args=[booking.pk])).content.decode()
    assert "2026-03-03 04:00 UTC" not in page
    assert "2026-03-03 09:00 UTC" in page


def test_a_rescheduled_bookings_admin_page_opens_and_names_the_hosts_it_had(team, admin_client, clock):
    """A reschedule's history entry says where the meeting was (``"from": {"start", "hosts"}``): collecting
    the reps to name, the decision panel put that dict in a set, and every rescheduled booking's admin page
    was a 500 (the test opening every change page had no rescheduled booking)."""
    from booking.services import booking_reschedule

    _, meeting_type, _ = team
    made = booking_create(
        meeting_type=meeting_type, start=START, name="Ada", email="a@example.org", timezone="UTC", now=NOW
    )
    booking_reschedule(token=made.body["manage_token"], start=START + dt.timedelta(days=1), now=NOW)
    booking = Booking.objects.get()
    page = admin_client.get(reverse("admin:booking_booking_change", args=[booking.pk]))
    assert page.status_code == 200
    held = booking.decision["history"][-1]["from"]["hosts"][0]
    assert f"(#{held})" in page.content.decode()


def test_bulk_record_held_does_not_erase_a_won_deal(team, admin_client, clock):
    """booking/admin.py:299-312: "Record outcome: held" on a selection replaces every outcome it finds,
    so a booking already recorded as won (with its deal amount) becomes a plain "held", amount gone, and the
    admin is told it was recorded."""
    _, meeting_type, _ = team
    won = book(meeting_type)
    other = book(meeting_type, START + dt.timedelta(hours=1), email="bo@example.org")
    clock.move_to(other.end + dt.timedelta(minutes=5))
    booking_outcome_record(booking=won, kind="won", amount="50000")
    url = reverse("admin:booking_booking_changelist")
    admin_client.post(url, {"action": "record_held", "_selected_action": [won.pk, other.pk]})
    outcome = BookingOutcome.objects.get(booking=won)
    assert (outcome.kind, str(outcome.amount)) == ("won", "50000.00"), (outcome.kind, outcome.amount)


def test_a_booking_event_record_cannot_be_deleted_on_its_own(team, admin_client, clock):
    """calendars/admin_connections.py:394-412: BookingEventAdmin keeps Django's delete (button and "delete
    selected"), though booking/admin.py:193-195 says the calendar-event records "may not be deleted on their
    own". Without the record, writeback (calendars/services/writeback.py:88-102) finds no event to cancel
    when the booking is cancelled or reassigned: the meeting stays in the host's calendar for good."""
    _, meeting_type, reps = team
    booking = book(meeting_type)
    host = booking.hosts.get(active=True).rep
    event = BookingEvent.objects.create(
        booking=booking, rep=host, provider="google", external_event_id="evt-1", written_sequence=0
    )
    url = reverse("admin:calendars_bookingevent_delete", args=[event.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert BookingEvent.objects.filter(pk=event.pk).exists(), (
        "the upcoming booking's event record was deleted"
    )
    assert response.status_code == 403


def test_the_attention_link_after_a_rep_save_lists_only_that_reps_bookings(team, admin_client, clock):
    """routing/admin.py:114-124: the rep admin's warning counts the rep's own bookings needing attention
    (``rep_id=``) but links to the list searched by ``q=<email>`` (icontains over every host row's email):
    Diana's booking is listed under Ana's "See and reassign" link."""
    from calendars.models import TimeOff
    from routing.admin import attention_link

    pool, meeting_type, (ana, ben, cy) = team
    ana.email, cy.email = "ana@example.com", "diana@example.com"
    ana.save(), cy.save()
    PoolMember.objects.filter(pool=pool, rep=ben).update(active=False)
    first = book(meeting_type)
    second = book(meeting_type, email="bo@example.org")
    assert {first.hosts.get().rep, second.hosts.get().rep} == {ana, cy}
    for rep in (ana, cy):
        TimeOff.objects.create(rep=rep, start=START, end=START + dt.timedelta(hours=1))
    count, link = attention_link(ana)
    listed = {b.pk for b in admin_client.get(link).context["cl"].result_list}
    assert count == 1
    assert len(listed) == count, f"Ana's link lists {len(listed)} bookings: {listed}"
