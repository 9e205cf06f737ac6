"""The iCalendar UID of a booking's invitations: stable for the booking, unique beyond this installation, and
how an ICS feed tells this installation's invitations from another Baton's."""

from __future__ import annotations

import datetime as dt

import pytest
from icalendar import Calendar

from booking.ics import ical_uid, is_own_uid
from booking.models import Booking
from tests.booking.booking_factories import NOW, body
from tests.foundation.test_foundation_settings import load_settings

AT = dt.datetime(2026, 3, 2, 8, 15, 30, 123456, tzinfo=dt.UTC)


def test_uid_names_the_key_the_creation_instant_and_the_domain(settings):
    settings.ICAL_UID_DOMAIN = "book.example.com"
    assert ical_uid(7, AT) == "booking-7-20260302T081530123456Z@book.example.com"
    berlin = AT.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert ical_uid(7, berlin) == ical_uid(7, AT)
    # the same key after a database reset, or on another installation, is another event
    assert ical_uid(7, AT + dt.timedelta(microseconds=1)) != ical_uid(7, AT)


def test_own_uids_are_told_from_other_installations(settings):
    settings.ICAL_UID_DOMAIN = "book.example.com"
    assert is_own_uid(ical_uid(7, AT))
    for uid in (
        "booking-7@baton",  # the form before the domain (every installation's was the same)
        "booking-7-20260302T081530123456Z@meet.vendor.example",
        "booking-7-20260302T081530123456Z@example.com",
        "meeting-7-20260302T081530123456Z@book.example.com",
        "",
    ):
        assert not is_own_uid(uid), uid


@pytest.mark.django_db
def test_the_invitation_names_the_uid_the_stored_booking_gives(
    api, meeting_type, clock, mailoutbox, django_capture_on_commit_callbacks
):
    """On PostgreSQL the invitations are built before the booking's row goes in: the creation instant they
    name is the one stored (microseconds and all), so later updates reach the same calendar event."""
    clock.move_to(NOW + dt.timedelta(microseconds=123457))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/meeting-types/intro/bookings", body(), format="json")
    assert response.status_code == 201, response.json()
    stored = Booking.objects.get(pk=response.json()["id"]).ical_uid
    assert (
        stored.startswith(f"booking-{response.json()['id']}-") and "123457Z@" in stored and is_own_uid(stored)
    )
    invitations = [c for m in mailoutbox for c, kind in m.alternatives if kind.startswith("text/calendar")]
    assert len(invitations) == 2  # the prospect's and the host's
    assert {str(Calendar.from_ical(c).walk("VEVENT")[0]["UID"]) for c in invitations} == {stored}


def test_the_domain_defaults_to_base_urls_host_and_bad_values_fail_loudly():
    show = "ICAL_UID_DOMAIN"
    assert (
        load_settings(show, DEBUG="1", BASE_URL="https://meet.acme.example").stdout.strip()
        == "meet.acme.example"
    )
    pinned = load_settings(
        show, DEBUG="1", BASE_URL="https://new.acme.example", ICAL_UID_DOMAIN="meet.acme.example"
    )
    assert pinned.stdout.strip() == "meet.acme.example"
    bad = load_settings(show, DEBUG="1", ICAL_UID_DOMAIN="two words")
    assert bad.returncode != 0 and "ICAL_UID_DOMAIN: expected a domain name" in bad.stderr
