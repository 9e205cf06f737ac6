"""Fixtures for the booking API tests: reps with working hours, pools, meeting types, a frozen clock."""

from __future__ import annotations

import pytest
import time_machine
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep


@pytest.fixture(autouse=True)
def booking_settings(settings):
    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BASE_URL = "https://book.example.com"
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def rep():
    return make_rep("Ana")


@pytest.fixture
def pool(rep):
    return make_pool("round_robin", [rep])


@pytest.fixture
def meeting_type(pool):
    return make_meeting_type(
        pool,
        slug="intro",
        questions=[
            {
                "key": "size",
                "label": "Company size",
                "type": "select",
                "options": ["1-10", "11-50"],
                "required": True,
            },
            {"key": "goal", "label": "Goal", "type": "text"},
        ],
    )


@pytest.fixture
def team():
    """A ``first_available`` pool of Ana, Ben and Cy: (pool, meeting type, [reps])."""
    ana, ben, cy = make_rep("Ana"), make_rep("Ben"), make_rep("Cy")
    pool = make_pool("first_available", [ana, ben, cy])
    return pool, make_meeting_type(pool), [ana, ben, cy]
