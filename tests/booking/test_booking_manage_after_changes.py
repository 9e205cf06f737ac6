"""The prospect's self-service manage flow (``/manage/<token>`` and the token API): what a prospect sees and
gets after cancelling, rescheduling, or once the meeting is over."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from icalendar import Calendar

from booking.models import Booking
from calendars.models import BusyInterval
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def post(api, url, data):
    return api.post(url, data, format="json")


def status_line(html: str) -> str:
    found = re.search(r'id="booking-status">(.*?)</p>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


@pytest.fixture
def booked(api, meeting_type):
    response = post(api, URL, body())
    assert response.status_code == 201, response.json()
    return response.json()


# --- what the pages say


def test_manage_page_of_a_no_show_booking_names_its_status_in_words(api, client, booked):
    """After a no-show is recorded, the badge shows the status's label "No-show" (``Booking.Status.NO_SHOW``),
    not the stored code "No_show"."""
    Booking.objects.filter(pk=booked["id"]).update(status=Booking.Status.NO_SHOW)
    html = client.get(f"/manage/{booked['manage_token']}").content.decode()
    line = status_line(html)
    assert "No_show" not in line
    assert "No-show" in line


def test_back_to_the_rescheduled_page_after_cancelling_does_not_say_the_booking_moved(api, client, booked):
    """The prospect moves the booking (manage.js reloads ``?changed=rescheduled``), then cancels it and
    presses Back. The page is not cached (docs/booking-page.md: Back "shows the booking as it is now"): it
    reads "Cancelled", without the query string's "Your booking was moved" notice."""
    token = booked["manage_token"]
    moved = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T11:00:00+01:00"})
    assert moved.status_code == 200, moved.json()
    assert post(api, f"/api/v1/bookings/{token}/cancel", {}).status_code == 200
    html = client.get(f"/manage/{token}?changed=rescheduled").content.decode()
    assert "Cancelled" in status_line(html)
    assert "An updated invitation is on its way" not in html


def test_the_confirmation_fragment_of_a_booking_cancelled_meanwhile_does_not_say_booked(api, client, booked):
    """The booking page fetches the confirmation after booking; if the booking was cancelled meanwhile (in
    another tab, by an admin), the fragment says so, without "add to calendar" links."""
    token = booked["manage_token"]
    assert post(api, f"/api/v1/bookings/{token}/cancel", {}).status_code == 200
    html = client.get(f"/manage/{token}/confirmation").content.decode()
    assert "You are booked" not in html and "This booking is cancelled" in html
    assert 'id="ics-link"' not in html


# --- behaviour pinned


def test_a_reschedule_frees_the_old_time_and_sends_one_request_per_attendee(
    api, booked, mailoutbox, django_capture_on_commit_callbacks
):
    token = booked["manage_token"]
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moved = post(
            api,
            f"/api/v1/bookings/{token}/reschedule",
            {"start": "2026-03-30T10:00:00+02:00", "timezone": "America/New_York"},  # after the clocks change
        )
    assert moved.status_code == 200, moved.json()
    assert moved.json()["start"] == "2026-03-30T04:00:00-04:00" and moved.json()["sequence"] == 1
    assert sorted(m.to[0] for m in mailoutbox) == sorted(["pat@example.org", booked["hosts"][0]["email"]])
    for message in mailoutbox:
        cal = Calendar.from_ical(message.attachments[0][1])
        event = cal.walk("VEVENT")[0]
        assert str(cal["method"]) == "REQUEST" and int(event["sequence"]) == 1
        assert event.decoded("dtstart") == dt.datetime(2026, 3, 30, 8, tzinfo=dt.UTC)
    # the old time is bookable again; the retry of the same move changes nothing
    assert post(api, URL, body(email="next@example.org")).status_code == 201
    again = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-30T08:00:00Z"})
    assert again.status_code == 200 and again.json()["sequence"] == 1


def test_a_reschedule_routed_to_another_rep_cancels_the_old_hosts_copy(
    api, mailoutbox, django_capture_on_commit_callbacks
):
    ana, bo = make_rep("Ana"), make_rep("Bo")
    make_meeting_type(make_pool("first_available", [ana, bo]), slug="fa")
    created = post(api, "/api/v1/meeting-types/fa/bookings", body(answers={})).json()
    assert created["hosts"][0]["name"] == "Ana"
    BusyInterval.objects.create(
        rep=ana,
        start=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC),
    )
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        moved = post(
            api, f"/api/v1/bookings/{created['manage_token']}/reschedule", {"start": "2026-03-04T09:00:00Z"}
        )
    assert [h["name"] for h in moved.json()["hosts"]] == ["Bo"]
    methods = {m.to[0]: str(Calendar.from_ical(m.attachments[0][1])["method"]) for m in mailoutbox}
    assert methods == {"pat@example.org": "REQUEST", bo.email: "REQUEST", ana.email: "CANCEL"}


@pytest.mark.parametrize(
    "suffix",
    ["%0A", "%20", "%00", "x" * 5000, "%ED%A0%BD", "%FF"],
    ids=["lf", "space", "nul", "long", "surr", "ff"],
)
def test_odd_tokens_are_plain_404s(api, client, booked, suffix):
    token = booked["manage_token"] + suffix
    for response in (
        api.get(f"/api/v1/bookings/{token}"),
        api.get(f"/api/v1/bookings/{token}/slots"),
        post(api, f"/api/v1/bookings/{token}/cancel", {}),
        post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T11:00:00+01:00"}),
        client.get(f"/manage/{token}"),
        client.get(f"/manage/{token}/ics"),
    ):
        assert response.status_code == 404
    assert Booking.objects.get(pk=booked["id"]).status == "confirmed"
