"""The route API, the route token in the slots and booking APIs, disqualification and nurture, and input
that must be a 400 naming its field, never a 500."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from booking.models import Booking, BookingHost, OutboxMessage
from booking.signals import lead_routed
from calendars.models import TimeOff
from leads.models import Lead, RoutingRule, validate_conditions
from tests.booking.booking_factories import NOW, body, make_meeting_type
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
ROUTE = "/api/v1/meeting-types/demo/route"
SLOTS = "/api/v1/meeting-types/demo/slots?start=2026-03-03&end=2026-03-03&timezone=Europe/Berlin"


def route(api, **kw):
    return api.post(ROUTE, lead_body(**kw), format="json")


def hours(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.json()
    return sorted({s["start"][11:13] for s in response.json()["slots"]})


def test_disqualified_lead_is_kept_and_handed_to_nurture(api, rules):
    seen = []
    receiver = lambda sender, **kw: seen.append(kw)  # noqa: E731
    lead_routed.connect(receiver)
    try:
        response = route(api, answers={"size": "1-10", "products": ["api"]})
    finally:
        lead_routed.disconnect(receiver)
    assert response.status_code == 200
    assert response.json() == {
        "disqualified": True,
        "rule": {"id": rules[0].pk, "name": "Too small"},
        "message": "Thanks! Our self-serve plan fits you best.",
    }
    lead = Lead.objects.get()
    assert lead.outcome == "disqualified" and lead.answers == {"size": "1-10", "products": ["api"]}
    assert lead.domain == "acme.io" and lead.country == "DE" and lead.matched_rule == rules[0]
    row = OutboxMessage.objects.get(event="lead.disqualified")
    assert row.handler == "leads.nurture_webhook" and row.booking is None
    assert row.payload["lead_id"] == lead.pk and row.payload["answers"]["size"] == "1-10"
    assert seen == [
        {"signal": lead_routed, "meeting_type": lead.meeting_type, "lead": lead, "disqualified": True}
    ]


def test_skills_restrict_slots_and_booking_and_link_the_lead(api, rules, reps):
    assert hours(api, SLOTS) == ["09", "10", "11", "13", "14", "15", "16"]  # whole pool
    response = route(api)
    assert response.status_code == 200
    data = response.json()
    assert data["disqualified"] is False and data["rule"]["name"] == "Enterprise"
    token = data["route"]
    assert hours(api, f"{SLOTS}&route={token}") == ["09", "10", "11"]  # only Ana (enterprise 8 ≥ 7)
    lead = Lead.objects.get()
    assert lead.decision["skills"]["matching"] == [reps["ana"].pk]
    assert lead.decision["route"]["candidates"] == [reps["ana"].pk]
    # a time only Ben/Cara have is refused for this route; Ana's time is booked with Ana
    taken = api.post(
        "/api/v1/meeting-types/demo/bookings", body("2026-03-03T14:00:00+01:00", route=token), format="json"
    )
    assert taken.status_code == 409
    created = api.post(
        "/api/v1/meeting-types/demo/bookings", body("2026-03-03T10:00:00+01:00", route=token), format="json"
    )
    assert created.status_code == 201, created.json()
    assert [h["name"] for h in created.json()["hosts"]] == ["Ana"]
    booking = Booking.objects.get()
    lead.refresh_from_db()
    assert lead.booking == booking and booking.decision["route"]["lead_id"] == lead.pk
    # the lead's score is shown with the booking in the admin
    admin_user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("admin:booking_booking_change", args=[booking.pk]))
    assert f"{lead.score:g} (lead #{lead.pk})" in page.content.decode()


def test_catch_all_routes_to_the_whole_pool(api, rules):
    data = route(api, answers={"size": "11-50"}).json()
    assert data["rule"]["name"] == "Everyone else"
    assert hours(api, f"{SLOTS}&route={data['route']}") == ["09", "10", "11", "13", "14", "15", "16"]


def test_audited_fallback_when_no_skilled_member_is_free(api, rules, reps):
    TimeOff.objects.create(rep=reps["ana"], start=NOW, end=NOW + dt.timedelta(days=10))
    data = route(api).json()
    lead = Lead.objects.get()
    assert lead.decision["fallback"]["used"] is True
    assert lead.decision["fallback"]["pool"] == rules[1].fallback_pool.slug
    assert "within 7 days" in lead.decision["fallback"]["reason"]
    assert lead.pool == rules[1].fallback_pool
    assert hours(api, f"{SLOTS}&route={data['route']}") == ["15"]  # Dan, 15-16


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[:-3] + ("abc" if not t.endswith("abc") else "xyz"), "not valid"),
        (lambda t: "garbage", "not valid"),
    ],
)
def test_bad_route_token_is_a_field_error(api, rules, mutate, message):
    token = mutate(route(api).json()["route"])
    slots = api.get(f"{SLOTS}&route={token}")
    assert slots.status_code == 400 and message in slots.json()["errors"]["route"][0]
    booking = api.post(
        "/api/v1/meeting-types/demo/bookings", body("2026-03-03T10:00:00+01:00", route=token), format="json"
    )
    assert booking.status_code == 400 and "route" in booking.json()["errors"]
    assert not BookingHost.objects.exists()


def test_expired_route_token(api, rules, clock):
    token = route(api).json()["route"]
    clock.shift(dt.timedelta(hours=3))
    response = api.get(f"{SLOTS}&route={token}")
    assert response.status_code == 400 and "expired" in response.json()["errors"]["route"][0]


def test_route_token_of_another_meeting_type(api, rules, sales):
    from tests.booking.booking_factories import make_meeting_type

    make_meeting_type(sales, slug="other")
    token = route(api).json()["route"]
    response = api.get(f"/api/v1/meeting-types/other/slots?route={token}")
    assert response.status_code == 400 and "another meeting type" in response.json()["errors"]["route"][0]


def test_route_validation_errors(api, rules):
    response = api.post(ROUTE, {"email": "nope", "timezone": "Mars/Base", "answers": {"x": 1}}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"email", "name", "timezone", "answers"}
    assert api.post("/api/v1/meeting-types/missing/route", lead_body(), format="json").status_code == 404


def test_without_rules_the_meeting_types_pool_is_used(api, demo, sales):
    data = route(api).json()
    assert data == {"disqualified": False, "rule": None, "route": data["route"]}
    assert Lead.objects.get().pool == sales


def test_booking_without_route_is_unchanged(api, rules):
    with time_machine.travel(NOW, tick=False):
        created = api.post(
            "/api/v1/meeting-types/demo/bookings",
            body("2026-03-03T14:00:00+01:00", answers={"size": "51+"}),
            format="json",
        )
    assert created.status_code == 201 and "route" not in Booking.objects.get().decision


def test_proficiency_is_the_rank_in_a_ranked_pool(api):
    from leads.models import RoutingRule
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    low, high = make_rep("Low"), make_rep("High")
    low.skills.create(skill="german", level=6)
    high.skills.create(skill="german", level=9)
    pool = make_pool("ranked", [low, high])  # Low has the better pool rank
    make_meeting_type(pool, slug="ranked")
    RoutingRule.objects.create(
        meeting_type_id=pool.meeting_types.get().pk, name="German", pool=pool, required_skills={"german": 5}
    )
    token = api.post("/api/v1/meeting-types/ranked/route", lead_body(answers={}), format="json").json()[
        "route"
    ]
    url = "/api/v1/meeting-types/ranked/bookings"
    routed = api.post(url, body("2026-03-03T10:00:00+01:00", answers={}, route=token), format="json")
    assert [h["name"] for h in routed.json()["hosts"]] == ["High"]
    plain = api.post(url, body("2026-03-03T11:00:00+01:00", answers={}), format="json")
    assert [h["name"] for h in plain.json()["hosts"]] == ["Low"]
    assert Lead.objects.get().decision["route"]["ranks"] == {str(high.pk): 0, str(low.pk): 1}


# --- input the database could not store or Python could not compute: a 400 naming the field, not a 500


def test_a_huge_integer_number_answer_is_a_field_error(api, rules):
    """A marketing site posts a number answer a visitor filled with a long run of digits; its JSON encoder
    sends a 400-digit integer. ``math.isfinite`` raised OverflowError while the answer was checked, and the
    route API answered 500."""
    api.raise_request_exception = False
    payload = json.dumps(lead_body(answers={"size": "51+", "seats": 10**400}))
    response = api.generic("POST", ROUTE, payload, content_type="application/json")
    assert response.status_code == 400, response.status_code
    assert response.json()["errors"] == {"answers": {"seats": ["Expected a number."]}}
    assert not Lead.objects.exists()


def test_a_lone_surrogate_in_an_answer_or_a_utm_key_is_a_field_error(api, sales):
    """A marketing site cuts a free-text answer (or a UTM key) to a fixed length in JavaScript and splits an
    emoji: the JSON carries a lone surrogate (``"\\ud83d"``). The name and UTM values were refused (DRF's
    CharField), answers and UTM keys were not: SQLite stored the broken text, PostgreSQL's jsonb refused it
    and the route API answered 500. An unknown answer key with one was a 500 on every database: the error
    named it, and the response could not be encoded as UTF-8."""
    make_meeting_type(sales, slug="t", questions=[{"key": "goal", "label": "Goal", "type": "text"}])
    api.raise_request_exception = False
    base = '"email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin"'
    surrogate = "Surrogate characters are not allowed: U+D83D."

    def post(extra: str):
        body_text = "{" + base + extra + "}"
        return api.generic(
            "POST", "/api/v1/meeting-types/t/route", body_text, content_type="application/json"
        )

    answer = post(', "answers": {"goal": "grow \\ud83d"}')
    nested_key = post(', "utm": {"utm_\\ud83d": "x"}')
    unknown = post(', "answers": {"g\\ud83d": "x"}')
    both = post(', "utm": {"utm_\\ud83d": "' + "x" * 300 + '"}')  # the key is named in the value's error
    assert [r.status_code for r in (answer, nested_key, unknown, both)] == [400] * 4
    assert answer.json()["errors"] == {"answers": {"goal": [surrogate]}}
    assert nested_key.json()["errors"] == {"utm": [surrogate]}
    assert unknown.json()["errors"] == {"answers": {"g\\ud83d": ["Unknown question."]}}
    assert list(both.json()["errors"]["utm"]) == ["utm_\\ud83d"]
    assert not Lead.objects.exists()


def test_a_route_token_with_a_lone_surrogate_is_a_field_error(api, rules):
    """A token is ASCII; a lone surrogate in one could not even be checked against its signature (a 500)."""
    api.raise_request_exception = False
    wanted = json.dumps(body("2026-03-03T14:00:00+01:00", answers={"size": "51+"}, route="a:b"))
    wanted = wanted.replace('"a:b"', '"a:b\\ud83d:c"')
    response = api.generic(
        "POST", "/api/v1/meeting-types/demo/bookings", wanted, content_type="application/json"
    )
    assert response.status_code == 400, response.status_code
    assert response.json()["errors"]["route"] == ["Not a route token."]


def test_a_stored_rule_with_a_nested_list_does_not_crash_the_route_api(api, demo, rules):
    """A ``contains_any`` rule with the choices wrapped once too often (``[["api", "sso"]]``) is refused on
    save (``tests/leads/test_leads_rules_core.py``); one stored before, or written to the database
    directly, made every submission that reached it a 500 (``TypeError: unhashable type: 'list'``). It
    matches nobody; the next rule routes the lead."""
    conditions = {"all": [{"field": "answers.products", "op": "contains_any", "value": [["api", "sso"]]}]}
    with pytest.raises(ValidationError) as refused:
        validate_conditions(conditions)
    assert refused.value.messages == [
        "conditions.all[0].value[0]: expected text, a number or true/false, not a list"
    ]
    RoutingRule.objects.create(meeting_type=demo, order=0, name="Products", conditions=conditions)
    api.raise_request_exception = False
    response = api.post(ROUTE, lead_body(answers={"size": "51+", "products": ["api"]}), format="json")
    assert response.status_code == 200, response.status_code
    assert response.json()["rule"]["name"] == "Everyone else"
