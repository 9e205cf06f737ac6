"""Names and titles reach e-mail subjects: a line break is a 400 at the API, and one that got in another way
(a config file's title, a booking from before the check) is flattened, so the confirmation is still sent.

Found by booking as "Pat\\nX": the host's e-mail failed with BadHeaderError on every retry until it died."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from django.core import mail

from booking.api.serializers import CONTROL as CONTROL_CHARACTERS
from booking.models import Booking, MeetingType, OutboxMessage
from tests.booking.booking_factories import body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"
CONTROL = "Line breaks and other control characters are not allowed."


@pytest.mark.parametrize(
    "name", ["Pat\nX", "Pat\r\nBcc: evil@example.com", "Pat\u2028X", "Pat\tX", "Pat\x1bX"]
)
def test_a_name_with_a_line_break_or_control_character_is_a_400(api, meeting_type, name):
    response = api.post(URL, body(name=name), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"name": [CONTROL]}
    assert not Booking.objects.exists()
    route = api.post(
        "/api/v1/meeting-types/intro/route",
        {"email": "pat@example.org", "name": name, "timezone": "Europe/Berlin"},
        format="json",
    )
    assert route.status_code == 400 and route.json()["errors"]["name"] == [CONTROL]


def test_names_with_accents_apostrophes_and_inner_spaces_are_fine(api, meeting_type):
    response = api.post(URL, body(name="Zoë O'Brien-Müller  Jr."), format="json")
    assert response.status_code == 201, response.content


def test_a_title_with_a_line_break_still_sends_both_confirmations_on_one_line(
    api, meeting_type, rep, django_capture_on_commit_callbacks
):
    MeetingType.objects.filter(pk=meeting_type.pk).update(title="Intro\r\ncall")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(URL, body(), format="json").status_code == 201
    assert not OutboxMessage.objects.filter(handler__startswith="email.").exclude(status="delivered").exists()
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == ["Confirmed: Intro call", "Confirmed: Intro call with Pat Prospect"], subjects


def test_the_character_class_is_exactly_unicodes_control_and_separator_characters_but_nul():
    everything = range(1, sys.maxunicode + 1)
    wanted = {chr(i) for i in everything if unicodedata.category(chr(i)) in ("Cc", "Zl", "Zp")}
    matched = {chr(i) for i in range(sys.maxunicode + 1) if CONTROL_CHARACTERS.search(chr(i))}
    assert matched == wanted and len(wanted) == 66
