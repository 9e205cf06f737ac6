"""Fixtures for the insights tests: a small pool with recorded bookings made through the live service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models.signals import post_save

from booking.models import Booking
from booking.services import booking_create
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

# When the members these tests add joined their pool: before the history they record.
JOINED = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def insights_settings(settings, monkeypatch):
    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BASE_URL = "https://book.example.com"
    monkeypatch.setattr("booking.services.routing.hosts_busy_live", lambda *a, **k: set())
    return settings


@pytest.fixture(autouse=True)
def members_joined_before_the_history():
    """The factories add pool members now (``PoolMember.joined_at`` is the wall clock) while these tests
    record their bookings at instants of March 2026 (``at``), and a replay takes a member only from when it
    joined: a member added here joined on ``JOINED`` instead (a test may set another instant afterwards)."""

    def joined_before(sender, instance, created, **kwargs):
        if created:
            PoolMember.objects.filter(pk=instance.pk).update(joined_at=JOINED)
            instance.joined_at = JOINED

    post_save.connect(joined_before, sender=PoolMember, dispatch_uid="insights-tests-joined")
    yield
    post_save.disconnect(sender=PoolMember, dispatch_uid="insights-tests-joined")


@pytest.fixture
def reps():
    return [make_rep("Ana"), make_rep("Ben"), make_rep("Cy", tz="Europe/London")]


@pytest.fixture
def pool(reps):
    return make_pool("first_available", reps, fairness_period="week")


@pytest.fixture
def meeting_type(pool):
    return make_meeting_type(pool, slug="intro")


@pytest.fixture
def now():
    return NOW


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """An instant in March 2026, UTC."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=dt.UTC)


def create(meeting_type, start, now, n, route=None):
    """A booking made at ``now`` (as live routing made it), and its manage token."""
    result = booking_create(
        meeting_type=meeting_type, start=start, name=f"P{n}", email=f"p{n}@example.org",
        timezone="Europe/Berlin", now=now, route=route,
    )  # fmt: skip
    return Booking.objects.get(pk=result.body["id"]), result.body["manage_url"].rsplit("/", 1)[-1]


def hosts_of(booking) -> set[int]:
    return set(booking.hosts.filter(active=True).values_list("rep_id", flat=True))
