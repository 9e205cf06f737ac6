"""The prospect-facing pages with Django's test client: /book/<slug>, /manage/<token>, its .ics and the
confirmation fragment (the browser flows are in tests/e2e/)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from icalendar import Calendar

from booking.models import Booking
from booking.pages import VISITOR_COOKIE
from booking.signals import booking_page_viewed
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db


def config_of(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="baton-config" type="application/json">') + len(
        '<script id="baton-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.fixture
def booked(api, meeting_type, clock):
    response = api.post(f"/api/v1/meeting-types/{meeting_type.slug}/bookings", body(), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_booking_page_renders_questions_zone_list_and_config(client, meeting_type):
    response = client.get("/book/intro?name=Pat&email=pat@example.org&date=2026-03-04&utm_source=mail")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 id="page-title">Intro call</h1>' in html
    assert 'for="q-size"' in html and '<option value="11-50">' in html  # select question with a label
    assert 'id="q-goal"' in html
    assert '<option value="Europe/Berlin">' in html  # searchable zone list
    assert "baton/book.js" in html and "baton/book-page.js" in html
    assert "embed-frame.js" not in html and "data-embed" not in html
    config = config_of(response)
    assert config["prefill"]["name"] == "Pat" and config["prefill"]["email"] == "pat@example.org"
    assert config["prefill"]["date"] == "2026-03-04"
    assert config["utm"] == {"utm_source": "mail"}
    assert config["api"]["bookings"] == "/api/v1/meeting-types/intro/bookings"
    assert [q["key"] for q in config["questions"]] == ["size", "goal"]


def test_bad_prefill_values_are_dropped_not_fatal(client, meeting_type):
    response = client.get("/book/intro?date=2026-13-40&start=2026-03-03T10:00&timezone=Mars/Base&utm_X=1")
    assert response.status_code == 200
    prefill = config_of(response)["prefill"]
    assert prefill["date"] == "" and prefill["start"] == "" and prefill["timezone"] == ""
    assert config_of(response)["utm"] == {}


def test_prefill_outside_the_years_the_api_accepts_is_dropped(client, meeting_type):
    response = client.get("/book/intro", {"date": "9999-12-31", "start": "0001-01-01T00:00:00+14:00"})
    prefill = config_of(response)["prefill"]
    assert prefill["date"] == "" and prefill["start"] == ""


def test_preselected_start_and_zone_are_passed_on(client, meeting_type):
    response = client.get("/book/intro", {"start": "2026-03-03T10:00:00+01:00", "timezone": "Europe/Berlin"})
    prefill = config_of(response)["prefill"]
    assert prefill["start"] == "2026-03-03T10:00:00+01:00" and prefill["timezone"] == "Europe/Berlin"


def test_embed_mode_drops_chrome_and_loads_the_frame_script(client, meeting_type):
    response = client.get("/book/intro?embed=1")
    html = response.content.decode()
    assert 'data-embed="1"' in html and "baton/embed-frame.js" in html
    assert 'class="brand"' not in html
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]


def test_unknown_or_inactive_meeting_type_is_a_404_page(client, meeting_type):
    assert client.get("/book/nope").status_code == 404
    meeting_type.active = False
    meeting_type.save()
    response = client.get("/book/intro")
    assert response.status_code == 404
    assert b"does not exist" in response.content


def test_page_view_signal_with_a_stable_visitor_cookie(client, meeting_type):
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    booking_page_viewed.connect(receiver)
    try:
        first = client.get("/book/intro?utm_campaign=spring")
        visitor = first.cookies[VISITOR_COOKIE].value
        assert first.cookies[VISITOR_COOKIE]["httponly"]
        second = client.get("/book/intro")
        assert VISITOR_COOKIE not in second.cookies  # kept, not re-issued
        client.get("/api/v1/meeting-types/intro/slots")  # API calls are not page views
        client.head("/book/intro")  # nor HEAD requests
    finally:
        booking_page_viewed.disconnect(receiver)
    assert [s["visitor"] for s in seen] == [visitor, visitor]
    assert seen[0]["utm"] == {"utm_campaign": "spring"} and seen[1]["utm"] == {}
    assert seen[0]["meeting_type"] == meeting_type and seen[0]["request"].path == "/book/intro"


def test_post_to_the_page_is_refused(client, meeting_type):
    assert client.post("/book/intro").status_code == 405


def test_manage_page_shows_booking_hosts_links_and_actions(client, booked, clock):
    token = booked["manage_token"]
    response = client.get(reverse("booking-manage", args=[token]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ana" in html  # the host
    assert "Tuesday 3 March 2026, 10:00–10:30" in html and "Europe/Berlin" in html
    assert f'href="/manage/{token}/ics"' in html
    assert "https://calendar.google.com/calendar/render?action=TEMPLATE" in html
    assert "dates=20260303T090000Z%2F20260303T093000Z" in html
    assert "https://outlook.live.com/calendar/0/deeplink/compose?" in html
    assert 'id="reschedule-open"' in html and 'id="cancel-open"' in html
    assert "baton/manage.js" in html
    assert config_of(response)["api"]["cancel"] == f"/api/v1/bookings/{token}/cancel"


def test_manage_page_of_a_cancelled_booking_has_no_actions(client, api, booked, clock):
    token = booked["manage_token"]
    api.post(f"/api/v1/bookings/{token}/cancel", {"reason": "conflict"}, format="json")
    html = client.get(f"/manage/{token}?changed=cancelled").content.decode()
    assert "Cancelled" in html and "conflict" in html and "Your booking is cancelled." in html
    assert 'id="cancel-open"' not in html and 'id="reschedule-open"' not in html
    assert "Download .ics" not in html


def test_manage_page_of_a_past_booking_cannot_be_changed(client, booked, clock):
    clock.shift(24 * 3600 * 2)
    html = client.get(f"/manage/{booked['manage_token']}").content.decode()
    assert "can no longer be changed" in html and 'id="cancel-open"' not in html


@pytest.mark.parametrize("token", ["short", "x" * 40, "../../etc/passwd"])
def test_unknown_token_is_a_404_page(client, token, meeting_type):
    for suffix in ("", "/ics", "/confirmation"):
        response = client.get(f"/manage/{token}{suffix}")
        assert response.status_code == 404, (token, suffix)


def test_ics_download(client, booked):
    response = client.get(f"/manage/{booked['manage_token']}/ics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "attachment" in response["Content-Disposition"]
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["uid"]) == Booking.objects.get(pk=booked["id"]).ical_uid
    assert event.decoded("dtstart").isoformat() == "2026-03-03T09:00:00+00:00"
    assert "Ana" in str(event["organizer"].params["CN"])
    assert "attendee" not in event  # a PUBLISH names no attendees (RFC 5546 §3.2.1)


def test_confirmation_fragment(client, booked):
    response = client.get(f"/manage/{booked['manage_token']}/confirmation")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "<html" not in html and "You are booked" in html and "Ana" in html
    assert f"https://book.example.com/manage/{booked['manage_token']}" in html
    assert Booking.objects.count() == 1


def test_landing_links_each_active_meeting_type(client, meeting_type):
    html = client.get("/").content.decode()
    assert 'href="/book/intro"' in html


def test_pages_link_the_icon_and_favicon_ico_redirects_to_it(client, meeting_type):
    from django.contrib.staticfiles import finders

    html = client.get(f"/book/{meeting_type.slug}").content.decode()
    assert '<link rel="icon" href="/static/baton/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("baton/favicon.svg")
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/baton/favicon.svg"


def test_the_booking_page_shows_the_kind_of_place_not_the_meeting_link(client):
    """``MeetingType.location_detail`` is the "Video link, phone number or address shown on the confirmation"
    (model help text, docs/config.md), and the public meeting-type API leaves it out (only
    ``location_kind``). The booking page shows the kind only, in its header and config JSON: a standing
    video room's link with its passcode is not handed to every visitor (it was), disqualified leads
    included; the confirmation shows it."""
    secret = "https://meet.example.com/j/4242?pwd=s3cr3t-room"
    meeting_type = make_meeting_type(
        make_pool("round_robin", [make_rep()]), location_kind="video", location_detail=secret
    )
    api = client.get(f"/api/v1/meeting-types/{meeting_type.slug}")
    assert api.status_code == 200 and "s3cr3t-room" not in api.content.decode()  # the API keeps it back
    page = client.get(f"/book/{meeting_type.slug}")
    assert page.status_code == 200
    assert "s3cr3t-room" not in page.content.decode() and "Video call" in page.content.decode()
