"""``ThreadFieldsSerializer`` (the booking body's serializer) builds its fields once per thread instead of
deep-copying them for every request; each instance must still see its own context through its fields."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from booking.api.serializers import BookingCreateSerializer

NO_QUESTIONS = {"meeting_type": SimpleNamespace(questions=[])}
BODY = {"start": "2026-03-10T09:00:00+01:00", "name": "Ada", "email": "ada@example.com", "timezone": "UTC"}


def test_fields_are_reused_in_a_thread_and_reach_the_current_instances_context():
    first = BookingCreateSerializer(data=BODY, context={"meeting_type": "first"})
    route = first.fields["route"]
    assert route.context == {"meeting_type": "first"}
    second = BookingCreateSerializer(data=BODY, context={"meeting_type": "second"})
    assert second.fields["route"] is route  # not copied again
    assert route.context == {"meeting_type": "second"}  # the field's parent is the new instance
    assert second.fields["utm"].child.parent is second.fields["utm"]


def test_another_thread_builds_its_own_fields():
    here = BookingCreateSerializer(data=BODY, context={}).fields["name"]
    there = []
    thread = threading.Thread(
        target=lambda: there.append(BookingCreateSerializer(data=BODY, context={}).fields["name"])
    )
    thread.start()
    thread.join()
    assert there[0] is not here
    assert there[0].parent is not here.parent


def test_validation_errors_are_per_instance():
    bad = BookingCreateSerializer(
        data={**BODY, "email": "nope", "utm": {"a": "x" * 201}}, context=NO_QUESTIONS
    )
    assert not bad.is_valid()
    assert set(bad.errors) == {"email", "utm"}
    good = BookingCreateSerializer(data=BODY, context=NO_QUESTIONS)
    assert good.is_valid(), good.errors
    assert good.validated_data["email"] == "ada@example.com"
