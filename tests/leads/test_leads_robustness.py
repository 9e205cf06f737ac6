"""Leads routing under odd input and failures: deeply nested bodies, blank UTM values, ``contains_any`` on
text, an owner backend that raises, a lead admin page of a non-numeric id (found by a hunting helper; each
test failed before its fix)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from leads.models import Lead, RoutingRule
from leads.rules_core import LeadFacts, matches
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
ROUTE = "/api/v1/meeting-types/demo/route"
INSTANT = "/api/v1/route"
KEY = "instant-route-hunt-key-0123456789"
AFTERNOON = dt.datetime(2026, 3, 2, 13, 5, tzinfo=dt.UTC)  # Monday 14:05 in Berlin: Ben and Cara work


def c(field, op, value):
    return {"field": field, "op": op, "value": value}


# --- input validation: a 400, never a 500


@pytest.mark.parametrize("url", [ROUTE, INSTANT], ids=["meeting_type_route", "instant_route"])
def test_deeply_nested_json_body_is_a_400_not_a_500(rules, settings, url):
    """A body whose ``answers`` nest a few hundred arrays deep (about 2 KB, far below the upload limit) makes
    ``json.loads`` raise ``RecursionError``, which DRF's ``JSONParser`` does not turn into a ``ParseError``
    (it only catches ``ValueError``): both public route endpoints answer a 500 (and mail the admins a
    traceback) for a malformed request that a client, a fuzzer or an attacker can send at will. It must be
    ``400 {"code": "malformed_request"}`` (or an ``invalid`` field error), like any other unreadable body."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    depth = 1000
    payload = json.dumps(lead_body(meeting_type="demo"))[:-1] + ', "answers": {"size": '
    raw = payload + "[" * depth + "]" * depth + "}}"
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {KEY}")
    with time_machine.travel(AFTERNOON, tick=False):
        response = client.post(url, raw, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] in ("malformed_request", "invalid")
    assert not Lead.objects.exists()


def test_deeply_nested_json_body_is_a_400_on_the_booking_create_too(demo):
    """The booking endpoints share the route API's parser (``PublicAPIView.parser_classes``): the same deeply
    nested body sent to ``POST /api/v1/meeting-types/<slug>/bookings`` is a ``400 malformed_request`` too."""
    raw = '{"answers": {"size": ' + "[" * 1000 + "]" * 1000 + "}}"
    client = Client(raise_request_exception=False)
    response = client.post("/api/v1/meeting-types/demo/bookings", raw, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "malformed_request"


# --- rule evaluation


def test_a_blank_utm_value_is_no_utm_value(api, demo, sales, overflow):
    """``?utm_campaign=`` (a templated link whose campaign was left empty; the booking page passes every
    ``utm_*`` parameter on as it is) sends ``"utm_campaign": ""``. The evaluator treats an empty plain fact
    (email, country …) as missing and the API drops blank answers, but an empty UTM value counts as present:
    a rule "any campaign → the campaign team" (``utm.utm_campaign exists: true``) takes every lead that came
    through such a link, and ``not_equals``/``not_in`` rules meant for "no campaign" miss them. A blank UTM
    value must be treated like a missing one (``exists: false``)."""
    RoutingRule.objects.create(
        meeting_type=demo,
        order=1,
        name="Campaign leads",
        conditions={"all": [c("utm.utm_campaign", "exists", True)]},
        pool=overflow,
    )
    response = api.post(ROUTE, lead_body(utm={"utm_source": "google", "utm_campaign": ""}), format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["rule"] is None  # no campaign: the meeting type's pool
    assert Lead.objects.get().pool == sales


@pytest.mark.parametrize(
    ("field", "facts"),
    [
        ("answers.goal", LeadFacts(answers={"goal": "We need a CRM integration"})),
        ("utm.utm_campaign", LeadFacts(utm={"utm_campaign": "spring_crm_launch"})),
    ],
    ids=["text_answer", "utm"],
)
def test_contains_any_on_text_matches_a_substring_like_contains(field, facts):
    """The validator refuses ``contains: ["crm"]`` and tells the author to use ``contains_any`` (docs:
    "``contains: ["crm"]``: use ``contains_any``"). On a text value ``contains`` is a case-insensitive
    substring test, but ``contains_any``/``contains_all`` compare the whole value for equality, so the rule
    the validator asked for (``contains_any: [crm, erp]`` on a free-text goal or a UTM campaign) silently
    never matches a lead whose text contains "crm". On text, ``contains_any`` must mean "contains any of"
    (and ``contains_all`` "contains all of")."""
    assert matches(c(field, "contains", "crm"), facts)  # the one-value form matches
    assert matches(c(field, "contains_any", ["crm", "erp"]), facts)
    assert matches(c(field, "contains_all", ["crm"]), facts)


# --- account ownership


class FailingCRMBackend:
    """An owner backend whose CRM is unreachable (``BATON_OWNER_BACKEND``)."""

    def owner_for(self, *, email, domain):
        raise ConnectionError("CRM timed out")


def test_an_owner_backend_failure_falls_back_to_normal_routing(api, demo, sales, settings):
    """``BATON_OWNER_BACKEND`` is meant for a CRM lookup (Salesforce, HubSpot): a network call that fails
    now and then. When it raises, the route API answers 500 and the prospect cannot book at all, although
    the rule defines what to do without an owner ("otherwise normal routing (``fallback_pool`` or the
    meeting type's pool)"). An owner lookup that fails must be recorded (``owner.used: false`` with the
    reason) and the lead routed normally, not lost."""
    settings.BATON_OWNER_BACKEND = "tests.leads.test_leads_robustness.FailingCRMBackend"
    RoutingRule.objects.create(
        meeting_type=demo, order=1, name="Owner", outcome=RoutingRule.Outcome.ACCOUNT_OWNER, pool=sales
    )
    client = Client(raise_request_exception=False)
    response = client.post(ROUTE, json.dumps(lead_body()), content_type="application/json")
    assert response.status_code == 200, response.content[:200]
    assert response.json()["route"]
    owner = Lead.objects.get().decision["owner"]
    assert owner["used"] is False
    assert owner["reason"] == "owner lookup failed: ConnectionError: CRM timed out"
    assert Lead.objects.get().decision["fallback"]["used"] is True


def test_an_owner_backend_failure_falls_back_on_the_instant_route_too(demo, reps, sales, settings):
    """The instant route asks the same owner backend: its failure is recorded and the lead goes to the rule's
    no-owner fallback (here the meeting type's pool: Ben is next up at 14:05), not a 500."""
    settings.BATON_OWNER_BACKEND = "tests.leads.test_leads_robustness.FailingCRMBackend"
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    RoutingRule.objects.create(meeting_type=demo, name="Owner", outcome=RoutingRule.Outcome.ACCOUNT_OWNER)
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {KEY}")
    body = json.dumps(lead_body(meeting_type="demo", answers={"size": "11-50"}))
    with time_machine.travel(AFTERNOON, tick=False):
        response = client.post(INSTANT, body, content_type="application/json")
    assert response.status_code == 200, response.content[:200]
    assert response.json()["rep"]["name"] == "Ben"
    decision = Lead.objects.get().decision
    assert decision["owner"]["used"] is False
    assert decision["owner"]["reason"].startswith("owner lookup failed: ConnectionError")
    assert decision["fallback"] == {"used": True, "pool": sales.slug, "reason": decision["owner"]["reason"]}


# --- lead admin


def test_route_by_hand_page_of_a_non_numeric_lead_id_is_a_404(admin_client, rules):
    """``/admin/leads/lead/<object_id>/route/`` takes any path segment; ``get_object_or_404`` with
    ``pk="abc"`` raises ``ValueError`` ("Field 'id' expected a number"), so a mistyped or truncated link is a
    500 (mailed to the admins), where the admin's own change page answers a mistyped id gracefully. It must
    be a 404."""
    admin_client.raise_request_exception = False
    url = reverse("admin:leads_lead_route", args=["abc"])
    assert admin_client.get(url).status_code == 404
