"""A booking body that PostgreSQL could not store or Python could not compute is a 400 naming the field,
never a 500: a lone surrogate (U+D800-U+DFFF: valid JSON, an emoji a client cut in half, refused by jsonb)
in an answer, a UTM key or a nested value, and a whole number beyond a float's range in a number answer
(``math.isfinite`` raised OverflowError). A NUL is ``test_booking_nul.py``'s. Error responses that name a
key of the request with a lone surrogate are encodable too (they could not be written as UTF-8)."""

from __future__ import annotations

import json

import pytest
import time_machine

from booking.api.errors import encodable
from booking.api.serializers import NUL_MESSAGE, finite_number, unstorable_error
from booking.models import Booking
from tests.booking.booking_factories import NOW, body

pytestmark = pytest.mark.django_db
SURROGATE = "Surrogate characters are not allowed: U+D83D."
NUMBER = {"key": "seats", "label": "Seats", "type": "number"}
PRODUCTS = {"key": "products", "label": "Products", "type": "multiselect", "options": ["api", "sso"]}


def post(api, meeting_type, data: dict):
    """POST ``data`` as JSON with every non-ASCII character escaped (``json.dumps``): a lone surrogate
    travels as ``\\ud83d``, as a browser's ``JSON.stringify`` sends one."""
    with time_machine.travel(NOW, tick=False):
        return api.generic(
            "POST",
            f"/api/v1/meeting-types/{meeting_type.slug}/bookings",
            json.dumps(data),
            content_type="application/json",
        )


@pytest.mark.parametrize(
    "change,errors",
    [
        ({"answers": {"size": "1-10", "goal": "grow \ud83d"}}, {"answers": {"goal": [SURROGATE]}}),
        ({"utm": {"utm_\ud83d": "x"}}, {"utm": [SURROGATE]}),
        ({"utm": {"utm_source": "\ud83d"}}, {"utm": {"utm_source": [SURROGATE]}}),
        ({"name": "Pat \ud83d"}, {"name": [SURROGATE]}),
        ({"note": "\ud83d"}, {"note": [SURROGATE]}),
        # the error names the unknown key: written escaped, so that the answer can be encoded
        ({"answers": {"size": "1-10", "g\ud83d": "x"}}, {"answers": {"g\\ud83d": ["Unknown question."]}}),
        (
            {"utm": {"u\ud83d": "x" * 201}},
            {"utm": {"u\\ud83d": ["Ensure this field has no more than 200 characters."]}},
        ),
    ],
)
def test_a_lone_surrogate_is_a_field_error(api, meeting_type, change, errors):
    api.raise_request_exception = False
    response = post(api, meeting_type, body(**change))
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == errors
    assert not Booking.objects.exists()


def test_a_lone_surrogate_in_a_multiselect_answers_item_is_refused(api, meeting_type):
    meeting_type.questions = [*meeting_type.questions, PRODUCTS, NUMBER]
    meeting_type.save()
    response = post(api, meeting_type, body(answers={"size": "1-10", "products": ["api", "\udc00"]}))
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "answers": {"products": ["Surrogate characters are not allowed: U+DC00."]}
    }


@pytest.mark.parametrize("seats", [10**400, -(10**400), 10**309])
def test_a_number_answer_beyond_a_float_is_a_field_error(api, meeting_type, seats):
    meeting_type.questions = [*meeting_type.questions, NUMBER]
    meeting_type.save()
    api.raise_request_exception = False
    response = post(api, meeting_type, body(answers={"size": "1-10", "seats": seats}))
    assert response.status_code == 400, response.status_code
    assert response.json()["errors"] == {"answers": {"seats": ["Expected a number."]}}
    assert not Booking.objects.exists()


def test_a_large_number_a_float_holds_is_still_an_answer(api, meeting_type):
    meeting_type.questions = [*meeting_type.questions, NUMBER]
    meeting_type.save()
    response = post(api, meeting_type, body(answers={"size": "1-10", "seats": 10**300}))
    assert response.status_code == 201, response.json()


def test_unstorable_text_is_found_in_keys_items_and_nested_values():
    assert unstorable_error({"a": ["ok", {"b": "x\x00"}]}) == NUL_MESSAGE
    assert unstorable_error({"a": [{"\ud800": 1}]}) == "Surrogate characters are not allowed: U+D800."
    assert unstorable_error({"a": ["😀", 1, None, True, 2.5]}) is None  # a whole emoji is fine
    assert [finite_number(v) for v in (1, 2.5, 10**400, float("inf"), True, "1")] == [
        True, True, False, False, False, False,
    ]  # fmt: skip


def test_error_keys_and_messages_are_made_encodable():
    errors = {"answers": {"g\ud83d": ["Unknown question."]}, "kind": ['"\udfff" is not a valid choice.']}
    assert encodable(errors) == {
        "answers": {"g\\ud83d": ["Unknown question."]},
        "kind": ['"\\udfff" is not a valid choice.'],
    }
    json.dumps(encodable(errors), ensure_ascii=False).encode()  # UTF-8 now
