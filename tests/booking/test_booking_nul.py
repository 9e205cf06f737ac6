"""A NUL (U+0000) anywhere in a booking body is a 400 naming the field, never a 500: PostgreSQL stores it
neither in text nor in jsonb (found on PostgreSQL: a text answer or a utm key with NUL failed at INSERT)."""

from __future__ import annotations

import pytest
import time_machine

from booking.models import Booking
from tests.booking.booking_factories import NOW, body

pytestmark = pytest.mark.django_db
NUL = "Null characters are not allowed."


@pytest.mark.parametrize(
    "change,errors",
    [
        ({"answers": {"size": "1-10", "goal": "a\x00b"}}, {"answers": {"goal": [NUL]}}),
        ({"utm": {"utm_source": "a\x00"}}, {"utm": {"utm_source": [NUL]}}),
        ({"utm": {"utm_\x00": "x"}}, {"utm": [NUL]}),
        ({"name": "Pat\x00"}, {"name": [NUL]}),
        ({"note": "\x00"}, {"note": [NUL]}),
    ],
)
def test_a_nul_character_is_a_field_error(api, meeting_type, change, errors):
    with time_machine.travel(NOW, tick=False):
        response = api.post(
            f"/api/v1/meeting-types/{meeting_type.slug}/bookings", body(**change), format="json"
        )
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == errors
    assert not Booking.objects.exists()


def test_the_route_api_shares_the_answer_and_utm_checks(api, meeting_type):
    url = f"/api/v1/meeting-types/{meeting_type.slug}/route"
    data = {"email": "pat@example.org", "name": "Pat", "timezone": "Europe/Berlin"}
    response = api.post(url, {**data, "answers": {"size": "1-10", "goal": "\x00"}}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"answers": {"goal": [NUL]}}
    response = api.post(url, {**data, "answers": {"size": "1-10"}, "utm": {"\x00": "x"}}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"utm": [NUL]}


def test_a_booking_page_link_with_nul_in_a_utm_value_drops_that_parameter(client, meeting_type):
    from insights.models import PageVisit

    page = client.get(f"/book/{meeting_type.slug}?utm_source=a%00b&utm_campaign=winter")
    assert page.status_code == 200  # PostgreSQL: a 500 recording the visit before (jsonb refuses \u0000)
    assert PageVisit.objects.get().utm == {"utm_campaign": "winter"}
    snippet = client.get(f"/book/{meeting_type.slug}/email-snippet?utm_source=a%00b")
    assert snippet.status_code == 400 and "Null characters" in snippet.content.decode()
