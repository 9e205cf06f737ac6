"""Account ownership (table, history, free-mail exclusion, fallback), territories and lead-score routing."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.models import Booking, BookingHost
from calendars.models import TimeOff
from leads.models import Account, Lead, RoutingRule, ScoreModel
from leads.owners import AccountOwnerBackend, OwnerMatch
from tests.booking.booking_factories import NOW, make_pool, make_rep
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
ROUTE = "/api/v1/meeting-types/demo/route"
SLOTS = "/api/v1/meeting-types/demo/slots?start=2026-03-03&end=2026-03-03&timezone=Europe/Berlin"


def hours(api, token):
    response = api.get(f"{SLOTS}&route={token}")
    assert response.status_code == 200, response.json()
    return sorted({s["start"][11:13] for s in response.json()["slots"]})


@pytest.fixture
def owner_rule(demo, sales):
    return RoutingRule.objects.create(
        meeting_type=demo,
        order=1,
        name="Returning",
        outcome="account_owner",
        pool=sales,
        fallback_after_days=5,
    )


def past_booking(demo, rep, email):
    start = NOW - dt.timedelta(days=20)
    booking = Booking.objects.create(
        meeting_type=demo,
        pool=demo.pool,
        start=start,
        end=start + dt.timedelta(minutes=30),
        prospect_name="Old",
        prospect_email=email,
        prospect_timezone="UTC",
        manage_token_hash=f"h-{email}",
        status=Booking.Status.COMPLETED,  # a meeting that took place (its outcome recorded)
    )
    BookingHost.objects.create(
        booking=booking, rep=rep, blocked_start=booking.start, blocked_end=booking.end, assigned_at=start
    )


def test_account_owner_gets_the_lead(api, owner_rule, reps):
    Account.objects.create(domain="ACME.io", owner=reps["ben"], crm_id="001")
    data = api.post(ROUTE, lead_body(), format="json").json()
    assert hours(api, data["route"]) == ["13", "14", "15", "16"]  # Ben only
    owner = Lead.objects.get().decision["owner"]
    assert owner["used"] is True and owner["source"] == "account" and owner["rep_id"] == reps["ben"].pk


def test_owner_without_free_slot_falls_back_to_normal_routing(api, owner_rule, reps):
    Account.objects.create(domain="acme.io", owner=reps["ben"])
    TimeOff.objects.create(rep=reps["ben"], start=NOW, end=NOW + dt.timedelta(days=6))
    data = api.post(ROUTE, lead_body(), format="json").json()
    decision = Lead.objects.get().decision
    assert decision["owner"]["used"] is False and "within 5 days" in decision["owner"]["reason"]
    assert decision["fallback"]["used"] is True and decision["route"]["candidates"] is None
    assert hours(api, data["route"]) == ["09", "10", "11", "13", "14", "15", "16"]


def test_history_owner_by_same_email_even_on_free_mail(api, owner_rule, reps, demo):
    past_booking(demo, reps["cara"], "pat@gmail.com")
    api.post(ROUTE, lead_body(email="PAT@gmail.com"), format="json")
    assert Lead.objects.get().decision["owner"]["source"] == "history_email"


def test_free_mail_domain_never_matches_a_company(api, owner_rule, reps, demo):
    past_booking(demo, reps["cara"], "someone@gmail.com")
    Account.objects.create(domain="gmail.com", owner=reps["ben"])
    api.post(ROUTE, lead_body(email="pat@gmail.com"), format="json")
    owner = Lead.objects.get().decision["owner"]
    assert owner == {"free_mail": True, "within_days": 5, "used": False, "reason": "no owner found"}


def test_history_owner_by_company_domain_and_learning_switch(reps, demo, settings):
    past_booking(demo, reps["cara"], "boss@acme.io")
    backend = AccountOwnerBackend()
    assert backend.owner_for(email="pat@acme.io", domain="acme.io") == OwnerMatch(
        reps["cara"].pk, "history_domain", "earlier booking from acme.io"
    )
    settings.BATON_LEARN_OWNERS = False
    assert backend.owner_for(email="pat@acme.io", domain="acme.io") is None


class FixedBackend:
    def owner_for(self, *, email, domain):
        from routing.models import Rep

        return OwnerMatch(Rep.objects.get(name="Cara").pk, "crm", "test CRM")


def test_owner_backend_is_pluggable(api, owner_rule, reps, settings):
    settings.BATON_OWNER_BACKEND = "tests.leads.test_leads_owners_score.FixedBackend"
    data = api.post(ROUTE, lead_body(), format="json").json()
    assert Lead.objects.get().decision["owner"]["source"] == "crm"
    assert hours(api, data["route"]) == ["13", "14", "15", "16"]


def test_territory_rule_picks_the_pool_by_country(api, demo, reps):
    americas = make_pool("first_available", [make_rep("Eve", tz="America/New_York", hours=(9, 10))])
    RoutingRule.objects.create(
        meeting_type=demo,
        order=1,
        name="Americas",
        conditions={"any": [{"field": "country", "op": "in", "value": ["US", "CA"]}]},
        pool=americas,
    )
    data = api.post(ROUTE, lead_body(timezone="America/Chicago"), format="json").json()
    assert data["rule"]["name"] == "Americas" and Lead.objects.get().country == "US"
    assert hours(api, data["route"]) == ["15"]  # 09:00 New York = 15:00 Berlin
    other = api.post(ROUTE, lead_body(), format="json").json()
    assert other["rule"] is None


def test_lead_score_routes_high_scores_and_disqualifies_low(api, demo, reps):
    ScoreModel.objects.create(
        meeting_type=demo,
        points=[
            {"when": {"field": "answers.seats", "op": "gte", "value": 100}, "points": 40},
            {"when": {"field": "answers.products", "op": "contains", "value": "sso"}, "points": 20},
            {"when": {"field": "free_mail", "op": "equals", "value": True}, "points": -30},
        ],
    )
    closers = make_pool("ranked", [reps["ana"]])
    RoutingRule.objects.create(
        meeting_type=demo,
        order=1,
        name="Hot",
        conditions={"field": "score", "op": "gte", "value": 50},
        pool=closers,
    )
    RoutingRule.objects.create(
        meeting_type=demo,
        order=2,
        name="Cold",
        conditions={"field": "score", "op": "lt", "value": 0},
        outcome="disqualify",
        disqualify_message="We'll be in touch.",
    )
    hot = api.post(
        ROUTE, lead_body(answers={"size": "51+", "seats": 120, "products": ["sso"]}), format="json"
    )
    assert hot.json()["rule"]["name"] == "Hot"
    cold = api.post(ROUTE, lead_body(email="x@gmail.com", answers={"size": "11-50"}), format="json")
    assert cold.json()["disqualified"] is True
    scores = dict(Lead.objects.values_list("email", "score"))
    assert scores == {"pat@acme.io": 60.0, "x@gmail.com": -30.0}
