"""Fixtures for the leads tests: reuse the booking API fixtures (frozen clock, API client, settings)."""

from __future__ import annotations

import pytest

from leads.models import RoutingRule
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.booking.conftest import api, booking_settings, clock  # noqa: F401  (re-exported fixtures)

QUESTIONS = [
    {"key": "size", "label": "Size", "type": "select", "options": ["1-10", "11-50", "51+"], "required": True},
    {"key": "products", "label": "Products", "type": "multiselect", "options": ["api", "sso", "crm"]},
    {"key": "seats", "label": "Seats", "type": "number"},
]


@pytest.fixture
def reps():
    ana = make_rep("Ana", hours=(9, 12))
    ben = make_rep("Ben", hours=(13, 17))
    cara = make_rep("Cara", hours=(13, 17))
    ana.skills.create(skill="enterprise", level=8)
    ben.skills.create(skill="enterprise", level=3)
    return {"ana": ana, "ben": ben, "cara": cara}


@pytest.fixture
def sales(reps):
    return make_pool("first_available", [reps["ana"], reps["ben"], reps["cara"]])


@pytest.fixture
def overflow():
    return make_pool("first_available", [make_rep("Dan", hours=(15, 16))])


@pytest.fixture
def demo(sales):
    return make_meeting_type(sales, slug="demo", questions=QUESTIONS)


@pytest.fixture
def rules(demo, sales, overflow):
    return [
        RoutingRule.objects.create(
            meeting_type=demo,
            order=10,
            name="Too small",
            conditions={"all": [{"field": "answers.size", "op": "equals", "value": "1-10"}]},
            outcome=RoutingRule.Outcome.DISQUALIFY,
            disqualify_message="Thanks! Our self-serve plan fits you best.",
        ),
        RoutingRule.objects.create(
            meeting_type=demo,
            order=20,
            name="Enterprise",
            conditions={"any": [{"field": "answers.seats", "op": "gte", "value": 100}]},
            outcome=RoutingRule.Outcome.ROUTE_POOL,
            pool=sales,
            required_skills={"enterprise": 7},
            fallback_pool=overflow,
            fallback_after_days=7,
        ),
        RoutingRule.objects.create(meeting_type=demo, order=99, name="Everyone else", pool=sales),
    ]


def lead_body(**kw) -> dict:
    data = {
        "email": "pat@acme.io",
        "name": "Pat Prospect",
        "timezone": "Europe/Berlin",
        "answers": {"size": "51+", "seats": 250},
        "utm": {"utm_source": "google"},
    }
    data.update(kw)
    return data
