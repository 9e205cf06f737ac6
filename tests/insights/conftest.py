"""Fixtures for the insights tests: a small pool with recorded bookings made through the live service."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep


@pytest.fixture(autouse=True)
def insights_settings(settings, monkeypatch):
    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BASE_URL = "https://book.example.com"
    monkeypatch.setattr("booking.services.routing.hosts_busy_live", lambda *a, **k: set())
    return settings


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
