"""Group bookings end to end: who leads the meeting (the prospect's invitation, the video link) after a
seat changes. The e-mails, the calendar write-back and the API now agree (``booking.models.HOST_ORDER``:
roles in the order they were chosen); before, a new row for the AE's seat came after the SE by key, and the
prospect lost or doubled its invitation. Each test failed before that fix."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.models import Booking
from booking.services import booking_create, booking_reassign
from calendars.models import Calendar
from calendars.services.sync import calendar_sync
from routing.models import PoolMember
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_working_rep
from tests.calendars.test_calendars_live_booking import next_weekday_at_ten

pytestmark = pytest.mark.django_db
PAT = "pat@example.org"


@pytest.fixture(autouse=True)
def mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BOOKING_RATE_LIMIT = ""


def connect(google_connection, rep):
    conn = google_connection(rep)
    calendar_sync(calendar_id=Calendar.objects.get(connection=conn, is_primary=True).pk)
    return conn


def calendar_parts(message) -> list[str]:
    return [c for c, kind in message.alternatives if kind.startswith("text/calendar")]


def test_reassigning_the_lead_seat_leaves_the_prospect_without_an_invitation(
    google_connection, fake_google, mailoutbox, django_capture_on_commit_callbacks
):
    """AEs with Google calendars, an SE without a calendar. The lead (AE) seat is reassigned to the other
    AE: the old AE's event is cancelled (Google tells the prospect), and the new AE, who leads the meeting
    by the e-mails (no .ics: "the provider invites"), must invite the prospect from their event."""
    ann, abe, sol = make_working_rep("Ann AE"), make_working_rep("Abe AE"), make_working_rep("Sol SE")
    for rep in (ann, abe):
        connect(google_connection, rep)
    pool = make_pool("group", [ann, abe, sol], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="group-lead")
    with django_capture_on_commit_callbacks(execute=True):
        body = booking_create(
            meeting_type=meeting_type, start=next_weekday_at_ten(), name="Pat", email=PAT, timezone="UTC"
        ).body
    assert [h["role"] for h in body["hosts"]] == ["ae", "se"]
    lead = ann if body["hosts"][0]["name"] == "Ann AE" else abe
    other = abe if lead is ann else ann
    assert [i["action"] for i in fake_google.invitations if PAT in i["to"]] == ["created"]
    booking = Booking.objects.get(pk=body["id"])
    sent, invited = len(mailoutbox), len(fake_google.invitations)
    with django_capture_on_commit_callbacks(execute=True):
        booking_reassign(
            booking_id=booking.pk,
            to_member_id=PoolMember.objects.get(pool=pool, rep=other).pk,
            from_rep_id=lead.pk,
            code="other",
            reason="Ann is travelling",
        )
    to_prospect = [m for m in mailoutbox[sent:] if m.to == [PAT]]
    google_to_prospect = [i["action"] for i in fake_google.invitations[invited:] if PAT in i["to"]]
    email_invites = [m for m in to_prospect if calendar_parts(m)]
    # the old lead's event was cancelled: Google sent the prospect a cancellation …
    assert "cancelled" in google_to_prospect
    # … and someone must invite them again: the new lead's Google event or the e-mail's .ics
    assert email_invites or {"created", "updated"} & set(google_to_prospect), (
        f"prospect got only {google_to_prospect} from Google and e-mails without .ics"
    )


def test_a_reschedule_routing_the_lead_seat_again_invites_the_prospect_twice(
    google_connection, fake_google, mailoutbox, django_capture_on_commit_callbacks
):
    """AEs without calendars, an SE with Google. The AE is busy at the new time, so the SE keeps their seat
    and the AE seat goes to the other AE. The e-mails take the new AE as the lead (no provider: the .ics
    is the invitation), and the write-back must not make the SE's event invite the prospect as well."""
    from booking.services import booking_reschedule
    from calendars.models import BusyInterval

    ann, abe, sol = make_working_rep("Ann AE"), make_working_rep("Abe AE"), make_working_rep("Sol SE")
    connect(google_connection, sol)
    pool = make_pool("group", [ann, abe, sol], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="group-move-lead", duration_minutes=60)
    start = next_weekday_at_ten()
    with django_capture_on_commit_callbacks(execute=True):
        made = booking_create(meeting_type=meeting_type, start=start, name="Pat", email=PAT, timezone="UTC")
    body = made.body
    assert [h["name"] for h in body["hosts"]][1] == "Sol SE"
    first_ae = ann if body["hosts"][0]["name"] == "Ann AE" else abe
    assert not [i for i in fake_google.invitations if PAT in i["to"]]  # the e-mail's .ics invited Pat
    later = start + dt.timedelta(hours=3)
    BusyInterval.objects.create(rep=first_ae, start=later, end=later + dt.timedelta(hours=1))
    sent, invited = len(mailoutbox), len(fake_google.invitations)
    with django_capture_on_commit_callbacks(execute=True):
        moved = booking_reschedule(token=body["manage_token"], start=later)
    assert [h["role"] for h in moved["hosts"]] == ["ae", "se"] and moved["hosts"][0]["name"] != first_ae.name
    email_invites = [m for m in mailoutbox[sent:] if m.to == [PAT] and calendar_parts(m)]
    google_to_prospect = [i["action"] for i in fake_google.invitations[invited:] if PAT in i["to"]]
    assert len(email_invites) + len(google_to_prospect) == 1, (
        f"prospect invited {len(email_invites)}x by e-mail .ics and by Google: {google_to_prospect}"
    )


def test_after_a_reschedule_reroutes_the_lead_seat_the_api_names_another_lead():
    """The reschedule's answer lists the new AE first (the lead); reading the booking back right after
    (GET /api/v1/bookings/{token}, the manage page, the .ics download) lists the SE first."""
    from rest_framework.test import APIClient

    from booking.services import booking_reschedule
    from calendars.models import BusyInterval

    ann, abe, sol = make_working_rep("Ann AE"), make_working_rep("Abe AE"), make_working_rep("Sol SE")
    pool = make_pool("group", [ann, abe, sol], roles=["ae", "ae", "se"])
    meeting_type = make_meeting_type(pool, slug="group-order", duration_minutes=60)
    start = next_weekday_at_ten()
    body = booking_create(meeting_type=meeting_type, start=start, name="Pat", email=PAT, timezone="UTC").body
    first_ae = ann if body["hosts"][0]["name"] == "Ann AE" else abe
    later = start + dt.timedelta(hours=3)
    BusyInterval.objects.create(rep=first_ae, start=later, end=later + dt.timedelta(hours=1))
    moved = booking_reschedule(token=body["manage_token"], start=later)
    got = APIClient().get(f"/api/v1/bookings/{body['manage_token']}").json()
    assert [h["name"] for h in got["hosts"]] == [h["name"] for h in moved["hosts"]]
