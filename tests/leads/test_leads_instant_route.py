"""``POST /api/v1/route``: instant routing to the rep free right now (rules, skills, owners, fairness)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from booking.models import OutboxMessage
from calendars.models import BusyInterval
from leads.models import Account, Lead, RoutingRule
from routing.models import LedgerEntry
from tests.booking.booking_factories import NOW, body, make_meeting_type, make_pool, make_rep
from tests.leads.conftest import lead_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/route"
# Monday 2 March 2026 in Berlin (UTC+1): Ana works 9-12, Ben and Cara 13-17, Dan (overflow) 15-16.
MORNING = dt.datetime(2026, 3, 2, 9, 5, tzinfo=dt.UTC)  # 10:05
AFTERNOON = dt.datetime(2026, 3, 2, 13, 5, tzinfo=dt.UTC)  # 14:05 (off the slot grid on purpose)
LATE = dt.datetime(2026, 3, 2, 14, 5, tzinfo=dt.UTC)  # 15:05
EVENING = dt.datetime(2026, 3, 2, 19, 0, tzinfo=dt.UTC)  # 20:00
SMALL = {"size": "11-50"}  # matches only the catch-all rule "Everyone else" (the sales pool)


KEY = "instant-route-test-key-0123456789"


@pytest.fixture
def api(settings):
    """An API client of the customer's own system, holding an instant-routing key."""
    settings.INSTANT_ROUTE_API_KEYS = ["an-older-key-still-accepted-0000", KEY]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {KEY}")
    return client


def at(moment):
    return time_machine.travel(moment, tick=False)


def instant(api, moment, **kw):
    with at(moment):
        return api.post(URL, lead_body(meeting_type="demo", **kw), format="json")


def chosen(response) -> str:
    assert response.status_code == 200, response.json()
    return response.json()["rep"]["name"]


def reasons(attempt) -> dict[str, str | None]:
    return {c["name"]: c["reason"] for c in attempt["candidates"]}


def rows() -> tuple[int, int, int]:
    return Lead.objects.count(), LedgerEntry.objects.count(), OutboxMessage.objects.count()


def test_picks_the_next_up_free_rep_and_records_the_assignment(api, rules, reps, sales):
    response = instant(api, AFTERNOON, answers=SMALL)
    assert chosen(response) == "Ben"
    data = response.json()
    lead = Lead.objects.get()
    assert data["lead_id"] == lead.pk and data["dry_run"] is False and data["disqualified"] is False
    assert data["rule"] == {"id": rules[2].pk, "name": "Everyone else"}
    assert data["rep"] == {
        "id": reps["ben"].pk,
        "name": "Ben",
        "email": reps["ben"].email,
        "pool": sales.slug,
    }
    (attempt,) = data["decision"]["attempts"]
    assert attempt["order"] == "next_up" and attempt["pool"] == sales.slug
    assert [(c["name"], c["outcome"], c["reason"]) for c in attempt["candidates"]] == [
        ("Ana", "skipped", "outside_working_hours"),
        ("Ben", "chosen", None),
        ("Cara", "not_needed", None),
    ]
    assert lead.outcome == "routed" and lead.pool == sales and lead.matched_rule == rules[2]
    assert lead.decision["rep"]["id"] == reps["ben"].pk and lead.decision["mode"] == "instant"
    entry = LedgerEntry.objects.get()
    assert (entry.pool, entry.rep, entry.kind, entry.delta, entry.booking) == (
        sales,
        reps["ben"],
        "assigned",
        1.0,
        None,
    )
    assert entry.reason == f"instant route: lead {lead.pk}"
    assert response["Cache-Control"] == "no-store"


def test_skips_busy_booked_and_capped_reps_with_reasons(api):
    ana, ben = make_rep("Ana", hours=(9, 12)), make_rep("Ben", hours=(13, 17))
    cara, dan, eve = make_rep("Cara", hours=(13, 17)), make_rep("Dan", hours=(13, 17)), make_rep("Eve")
    make_meeting_type(make_pool("first_available", [ana, ben, cara, dan, eve]), slug="demo")
    make_meeting_type(make_pool("first_available", [cara]), slug="cara-only")
    make_meeting_type(make_pool("first_available", [dan]), slug="dan-only")
    BusyInterval.objects.create(
        rep=ben, start=AFTERNOON - dt.timedelta(hours=1), end=AFTERNOON + dt.timedelta(hours=2)
    )
    with at(NOW):  # Cara is in a meeting at 14:00-14:30; Dan has one at 16:00 and a daily cap of one
        for slug, start in (
            ("cara-only", "2026-03-02T14:00:00+01:00"),
            ("dan-only", "2026-03-02T16:00:00+01:00"),
        ):
            made = api.post(f"/api/v1/meeting-types/{slug}/bookings", body(start, answers={}), format="json")
            assert made.status_code == 201, made.json()
    dan.daily_cap = 1
    dan.save()
    response = instant(api, AFTERNOON, answers={})
    assert chosen(response) == "Eve"
    assert reasons(response.json()["decision"]["attempts"][0]) == {
        "Ana": "outside_working_hours",
        "Ben": "busy",
        "Cara": "busy",
        "Dan": "cap",
        "Eve": None,
    }
    with at(LATE):  # 15:05: Cara's meeting is over, so she is next up again
        assert chosen(api.post(URL, lead_body(meeting_type="demo", answers={}), format="json")) == "Cara"


def test_the_account_owner_is_preferred_when_free_now(api, demo, reps, sales):
    RoutingRule.objects.create(meeting_type=demo, name="Owner", outcome=RoutingRule.Outcome.ACCOUNT_OWNER)
    Account.objects.create(domain="acme.io", owner=reps["cara"])
    response = instant(api, AFTERNOON, answers=SMALL, dry_run=True)
    assert chosen(response) == "Cara"  # although Ben is next up
    owner = response.json()["decision"]["owner"]
    assert owner["used"] is True and owner["rep_id"] == reps["cara"].pk and owner["source"] == "account"
    BusyInterval.objects.create(rep=reps["cara"], start=AFTERNOON, end=AFTERNOON + dt.timedelta(minutes=30))
    response = instant(api, AFTERNOON, answers=SMALL)
    assert chosen(response) == "Ben"
    decision = response.json()["decision"]
    assert (
        decision["owner"]["used"] is False and decision["owner"]["reason"] == "owner is not free now (busy)"
    )
    assert decision["fallback"] == {"used": True, "pool": sales.slug, "reason": decision["owner"]["reason"]}
    assert [reasons(a) for a in decision["attempts"]] == [
        {"Cara": "busy"},
        {"Ana": "outside_working_hours", "Ben": None, "Cara": None},
    ]


def test_skills_restrict_the_candidates_then_the_fallback_pool(api, rules, reps, overflow):
    response = instant(api, MORNING, dry_run=True)  # 250 seats: "Enterprise" needs enterprise ≥ 7
    assert chosen(response) == "Ana"
    assert response.json()["decision"]["skills"]["matching"] == [reps["ana"].pk]
    response = instant(api, LATE)  # Ana is off; Ben is free but not skilled enough: the fallback pool
    assert chosen(response) == "Dan"
    decision = response.json()["decision"]
    assert decision["attempts"][0]["restricted_to"] == [reps["ana"].pk]
    assert reasons(decision["attempts"][0]) == {"Ana": "outside_working_hours"}
    assert decision["fallback"]["used"] is True and decision["fallback"]["pool"] == overflow.slug
    assert Lead.objects.get().pool == overflow
    assert LedgerEntry.objects.get().pool == overflow
    refused = instant(api, AFTERNOON)  # 14:05: Dan only works 15-16
    assert refused.status_code == 409 and refused.json()["code"] == "no_rep_available"


def test_disqualified_lead_is_kept_and_handed_to_nurture(api, rules):
    response = instant(api, EVENING, answers={"size": "1-10"})  # nobody works now: no matter
    assert response.status_code == 200
    data = response.json()
    assert data["disqualified"] is True and data["message"] == "Thanks! Our self-serve plan fits you best."
    assert "rep" not in data and data["rule"]["name"] == "Too small"
    lead = Lead.objects.get()
    assert data["lead_id"] == lead.pk and lead.outcome == "disqualified" and lead.pool is None
    assert OutboxMessage.objects.get().payload["lead_id"] == lead.pk
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("answers", [SMALL, {"size": "1-10"}], ids=["routed", "disqualified"])
def test_dry_run_writes_nothing(api, rules, answers):
    before = rows()
    response = instant(api, AFTERNOON, answers=answers, dry_run=True)
    assert response.status_code == 200
    data = response.json()
    assert data["dry_run"] is True and data["lead_id"] is None
    assert data["disqualified"] is (answers["size"] == "1-10")
    assert rows() == before == (0, 0, 0)
    if not data["disqualified"]:
        assert data["rep"]["name"] == "Ben"


def test_no_rep_free_now_is_409_and_writes_nothing(api, rules):
    for dry_run in (False, True):
        response = instant(api, EVENING, answers=SMALL, dry_run=dry_run)
        assert response.status_code == 409
        data = response.json()
        assert data["code"] == "no_rep_available" and data["detail"] == "No rep is available right now."
        assert set(reasons(data["decision"]["attempts"][0]).values()) == {"outside_working_hours"}
    assert rows() == (0, 0, 0)


def test_bad_input(api, rules):
    with at(AFTERNOON):
        bad = api.post(URL, lead_body(meeting_type="demo", email="nope", timezone="Mars/Base"), format="json")
        assert bad.status_code == 400
        assert set(bad.json()["errors"]) == {"email", "timezone"}
        bad = api.post(URL, lead_body(meeting_type="demo", answers={"x": 1}, dry_run="maybe"), format="json")
        assert bad.status_code == 400 and set(bad.json()["errors"]) == {"answers", "dry_run"}
        for slug in (None, "", "not a slug", 7):
            data = lead_body() if slug is None else lead_body(meeting_type=slug)
            bad = api.post(URL, data, format="json")
            assert bad.status_code == 400 and set(bad.json()["errors"]) == {"meeting_type"}, slug
        missing = api.post(URL, lead_body(meeting_type="missing"), format="json")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert api.post(URL, [1, 2], format="json").status_code == 400
    assert rows() == (0, 0, 0)


def test_fairness_successive_leads_rotate_in_a_first_available_pool(api, rules, reps):
    names = [chosen(instant(api, AFTERNOON, answers=SMALL)) for _ in range(3)]
    assert names == ["Ben", "Cara", "Ben"]
    entries = LedgerEntry.objects.filter(kind="assigned", booking__isnull=True)
    assert sorted(e.rep.name for e in entries) == ["Ben", "Ben", "Cara"]
    loads = {
        c["name"]: c["count"]
        for c in Lead.objects.order_by("pk").last().decision["attempts"][0]["candidates"]
    }
    assert loads == {"Ana": 0.0, "Ben": 1.0, "Cara": 1.0}


def test_a_ranked_pool_asks_the_lowest_rank_free_rep_first(api):
    low, high = make_rep("Low"), make_rep("High")
    make_meeting_type(make_pool("ranked", [low, high]), slug="demo")
    names = [chosen(instant(api, AFTERNOON, answers={})) for _ in range(2)]
    assert names == ["Low", "Low"]
    BusyInterval.objects.create(rep=low, start=AFTERNOON, end=AFTERNOON + dt.timedelta(minutes=5))
    response = instant(api, AFTERNOON, answers={})
    assert chosen(response) == "High" and response.json()["decision"]["attempts"][0]["order"] == "rank"


def test_rate_limited_like_the_other_public_posts(api, rules, settings):
    settings.BOOKING_RATE_LIMIT = "2/min"
    codes = [instant(api, AFTERNOON, answers=SMALL, dry_run=True).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_requests_with_a_wrong_or_missing_key_count_against_the_rate_limit(api, rules, settings):
    """A client hammering the endpoint with guessed keys: DRF checks permissions before throttles, so every
    guess was answered 403 and none was counted (key guessing was unlimited). Every POST counts against
    the client's limit, whatever its key: a wrong key is a 403 until the limit, then a 429."""
    settings.BOOKING_RATE_LIMIT = "3/min"
    guesser = APIClient()
    codes = []
    for i in range(5):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer guess-{i:030d}")
        codes.append(instant(guesser, AFTERNOON).status_code)
    assert codes == [403, 403, 403, 429, 429]
    limited = instant(api, AFTERNOON, answers=SMALL)  # the same client address: counted together
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    guesser.credentials()
    assert instant(guesser, AFTERNOON).status_code == 429  # no key at all: counted too


def test_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/route"]["post"]
    assert operation["operationId"] == "route_instant"
    assert {"200", "400", "404", "409"} <= set(operation["responses"])
    assert "dry_run" in schema["components"]["schemas"]["InstantRouteRequest"]["properties"]


def test_needs_an_api_key(api, rules, settings):
    before = rows()
    anonymous = APIClient()
    with at(AFTERNOON):
        missing = anonymous.post(URL, lead_body(meeting_type="demo"), format="json")
        anonymous.credentials(HTTP_AUTHORIZATION="Bearer not-the-key")
        wrong = anonymous.post(URL, lead_body(meeting_type="demo"), format="json")
        settings.INSTANT_ROUTE_API_KEYS = []
        off = api.post(URL, lead_body(meeting_type="demo"), format="json")
    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="baton"'
    assert wrong.status_code == 403 and wrong.json()["detail"] == "Unknown API key."
    assert off.status_code == 403 and "INSTANT_ROUTE_API_KEYS" in off.json()["detail"]
    assert rows() == before
