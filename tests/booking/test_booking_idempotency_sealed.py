"""An Idempotency-Key whose stored response can no longer be read (sealed under another ``SECRET_KEY``): the
request is refused with ``try_again``, never booked twice and never a 500, on both databases; once the key's
row expires the key books again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from booking.errors import TryAgain
from booking.models import Booking, IdempotencyKey
from tests.booking.booking_factories import create_keyed, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def _create(meeting_type):
    return create_keyed(meeting_type, "sealed")


def test_an_unreadable_stored_response_is_try_again_until_the_key_expires(settings):
    meeting_type = make_meeting_type(make_pool("first_available", [make_rep("K"), make_rep("L")]))
    first = _create(meeting_type)
    assert _create(meeting_type).replayed  # readable: replayed
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    with pytest.raises(TryAgain):
        _create(meeting_type)
    assert Booking.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    again = _create(meeting_type)  # the expired row makes way for the new one
    assert not again.replayed and again.body["id"] != first.body["id"]
    assert Booking.objects.count() == 2
    row = IdempotencyKey.objects.get()
    assert row.booking_id == again.body["id"] and row.expires_at > timezone.now()
