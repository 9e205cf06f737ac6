"""Answers as hosts read them (their e-mail, the calendar event Baton writes, the admin): the questions'
labels in the questions' order, and lists, yes/no and numbers written out, not Python's ``['sso']``,
``True`` and ``120.0`` under the question's key."""

from __future__ import annotations

import pytest

from booking.emails import send_host_email
from booking.models import OutboxMessage
from booking.presenters import answer_rows, answer_text
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
QUESTIONS = [
    {"key": "size", "label": "Company size", "type": "select", "options": ["1-10", "11-50"]},
    {"key": "products", "label": "Products", "type": "multiselect", "options": ["sso", "scim", "audit"]},
    {"key": "call", "label": "May we call you?", "type": "checkbox"},
    {"key": "seats", "label": "Seats", "type": "number"},
]


def test_answers_read_as_labels_and_words():
    answers = {"seats": 120.0, "call": True, "products": ["sso", "scim"], "size": "11-50", "old": 1.5}
    assert answer_rows(QUESTIONS, answers) == [
        ("Company size", "11-50"),
        ("Products", "sso, scim"),
        ("May we call you?", "yes"),
        ("Seats", "120"),
        ("old", "1.5"),  # a question removed since: its key, after the others
    ]
    assert [answer_text(v) for v in (False, 7, 1e20, [])] == ["no", "7", "1e+20", ""]


def test_the_hosts_email_shows_labelled_answers(api, mailoutbox, django_capture_on_commit_callbacks):
    make_meeting_type(make_pool("round_robin", [make_rep("Ana")]), slug="qa", questions=QUESTIONS)
    answers = {"size": "11-50", "products": ["sso", "scim"], "call": True, "seats": 120}
    with django_capture_on_commit_callbacks(execute=True):  # the outbox delivers after the commit
        response = api.post("/api/v1/meeting-types/qa/bookings", body(answers=answers), format="json")
    assert response.status_code == 201, response.json()
    (host_mail,) = [m for m in mailoutbox if m.to != ["pat@example.org"]]
    lines = host_mail.body.splitlines()
    start = lines.index("Company size: 11-50")
    assert lines[start : start + 4] == [
        "Company size: 11-50",
        "Products: sso, scim",
        "May we call you?: yes",
        "Seats: 120",
    ]


def test_a_message_queued_before_the_labels_still_sends(api, mailoutbox):
    make_meeting_type(make_pool("round_robin", [make_rep("Ana")]), slug="qa", questions=QUESTIONS)
    api.post("/api/v1/meeting-types/qa/bookings", body(answers={"size": "11-50"}), format="json")
    message = OutboxMessage.objects.filter(handler="email.host").get()
    payload = dict(message.payload)  # the host's message has no sealed secrets
    assert payload["booking"]["answers"] == [["Company size", "11-50"]]
    payload["booking"]["answers"] = {"size": "11-50"}  # the shape queued by the earlier version
    send_host_email(payload)
    assert "size: 11-50" in mailoutbox[-1].body
