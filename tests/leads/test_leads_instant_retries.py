"""The instant route (``POST /api/v1/route``) under contention and retries: its lock waits end at the lock
timeout, a slow CRM owner lookup is made before the pools are locked, and an ``Idempotency-Key`` replays."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine
from django.test import Client

from booking.models import IdempotencyKey
from booking.services import idempotency
from leads.models import Lead, RoutingRule
from routing.models import LedgerEntry
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep
from tests.booking.test_booking_database_trouble import elsewhere, in_thread

KEY = "instant-route-test-key-0123456789"
INSTANT = "/api/v1/route"
MONDAY_NOON = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)  # 12:00 in Berlin: make_rep's reps work


def instant_post(data: dict):
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {KEY}")
    return client.post(INSTANT, data, content_type="application/json")


def instant_body(slug: str, **kw) -> dict:
    data = {"meeting_type": slug, "email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin"}
    data.update(kw)
    return data


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_instant_route_behind_a_locked_pool_answers_try_again_within_the_lock_timeout(settings):
    """An admin saves the pool (or a config import updates it) in a transaction that lasts a while: the pool
    row is held ``FOR NO KEY UPDATE``. ``POST /api/v1/route`` row-locks the same pool (``_lock_pools``)
    without any ``lock_timeout``: the phone system's request hangs as long as the other transaction
    lasts (a gunicorn sync worker tied up, the caller waiting on the line), where every other write of the
    API answers ``409 try_again`` after ``BOOKING_LOCK_TIMEOUT_MS`` (docs/booking-api.md). And when a lock
    wait is ended by PostgreSQL (a DBA's ``lock_timeout`` or ``statement_timeout``) the error is not mapped
    at all: a ``500 server_error``. Expected: a 409 ``try_again`` within the lock timeout, nothing written."""
    settings.DEBUG = False
    settings.BOOKING_LOCK_TIMEOUT_MS = 300
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    pool = make_pool("first_available", [make_rep("Ana")])
    make_meeting_type(pool, slug="call")
    with time_machine.travel(MONDAY_NOON, tick=True), elsewhere() as other:
        other.execute("UPDATE routing_pool SET name = name WHERE id = %s", [pool.pk])
        thread, outcome = in_thread(lambda: instant_post(instant_body("call")))
        thread.join(4)  # 300 ms allowed
        answered = not thread.is_alive()
    thread.join(15)
    assert answered, "the instant route waited for the pool row as long as another session held it"
    response = outcome["result"]
    assert (response.status_code, response.json()["code"]) == (409, "try_again")
    assert not Lead.objects.exists() and not LedgerEntry.objects.exists()


class SlowCRM:
    """An owner backend whose CRM answers slowly (``BATON_OWNER_BACKEND``): until ``answer`` is set."""

    asked = threading.Event()
    answer = threading.Event()

    def owner_for(self, *, email, domain):
        SlowCRM.asked.set()
        SlowCRM.answer.wait(10)
        return None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_slow_crm_lookup_does_not_hold_up_the_pools_other_instant_routes(settings):
    """``BATON_OWNER_BACKEND`` is meant for a CRM (Salesforce, HubSpot): a network call taking seconds when
    the CRM is slow. ``instant_route`` makes that call inside its durable transaction, after
    ``_lock_pools`` has row-locked every pool of the meeting type: while one lead's owner is looked up,
    every other instant route of those pools waits for the CRM, also a lead no owner rule applies to
    (here: an address at another company, routed to the meeting type's pool). A CRM answering in 5 s makes
    the phone system's instant routing 5 s per call, one call at a time. The lookup only reads: it belongs
    before the locks, as the meeting-type route does it (``lead_route`` holds no lock while it asks)."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    settings.BATON_OWNER_BACKEND = f"{__name__}.SlowCRM"
    SlowCRM.asked.clear()
    SlowCRM.answer.clear()
    pool = make_pool("first_available", [make_rep("Ana"), make_rep("Ben")])
    meeting_type = make_meeting_type(pool, slug="call")
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="Acme's owner",
        conditions={"all": [{"field": "email_domain", "op": "equals", "value": "acme.io"}]},
        outcome=RoutingRule.Outcome.ACCOUNT_OWNER,
    )
    with time_machine.travel(MONDAY_NOON, tick=True):
        slow, _ = in_thread(lambda: instant_post(instant_body("call", email="pat@acme.io")))
        other = None
        try:
            assert SlowCRM.asked.wait(10)
            started = time.monotonic()
            other, outcome = in_thread(lambda: instant_post(instant_body("call", email="kim@other.io")))
            other.join(3)
            waited = time.monotonic() - started
        finally:
            SlowCRM.answer.set()
            slow.join(15)
            if other is not None:
                other.join(15)
    assert outcome["result"].status_code == 200, outcome["result"].content
    assert waited < 3, f"the other lead waited {waited:.1f} s for the CRM's answer to the first"


@pytest.mark.django_db
def test_a_retried_instant_route_with_its_idempotency_key_assigns_the_lead_once(settings):
    """A phone system or form backend sends ``POST /api/v1/route``, its connection drops (or it gets the
    ``503 unavailable`` that says "nothing was changed … the same request may be sent again") and it sends
    the same request again with the same ``Idempotency-Key``, as the booking API asks clients to do. The
    instant route ignores the key: the retry stores a second lead for the same caller, hands it to the next
    rep in turn and charges that rep too, so two reps call the prospect and the fairness ledger counts one
    lead twice. The booking API replays a keyed retry (docs/booking-api.md "Idempotency"); the instant route,
    the other public write, should answer the retry with the first response and write nothing more."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    make_meeting_type(make_pool("first_available", [make_rep("Ana"), make_rep("Ben")]), slug="call")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {KEY}", HTTP_IDEMPOTENCY_KEY="call-4711")
    with time_machine.travel(MONDAY_NOON, tick=False):
        first = client.post(INSTANT, instant_body("call"), content_type="application/json")
        retry = client.post(INSTANT, instant_body("call"), content_type="application/json")
    assert first.status_code == 200 and retry.status_code == 200, retry.content
    assert retry.json()["lead_id"] == first.json()["lead_id"]
    assert retry.json()["rep"] == first.json()["rep"]
    assert Lead.objects.count() == 1 and LedgerEntry.objects.count() == 1


@pytest.mark.django_db
def test_an_instant_route_key_reused_with_another_body_is_refused_and_a_retry_is_marked_replayed(settings):
    """The booking API's rules for a key (docs/booking-api.md "Idempotency"): a retry's response carries
    ``Idempotent-Replayed: true``; the same key with a different body is a 422 and stores nothing. A key
    used for a booking as well is another request's: the instant route's keys have their own key space."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    make_meeting_type(make_pool("first_available", [make_rep("Ana"), make_rep("Ben")]), slug="call")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {KEY}", HTTP_IDEMPOTENCY_KEY="call-4712")
    with time_machine.travel(MONDAY_NOON, tick=False):
        first = client.post(INSTANT, instant_body("call"), content_type="application/json")
        retry = client.post(INSTANT, instant_body("call"), content_type="application/json")
        other = client.post(INSTANT, instant_body("call", name="Kim"), content_type="application/json")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Lead.objects.count() == 1 and LedgerEntry.objects.count() == 1
    stored = IdempotencyKey.objects.get()
    assert stored.key_hash != idempotency.key_hash("call-4712")  # a booking with the key is not refused


@pytest.mark.django_db
def test_an_owner_rule_that_appears_between_the_owner_lookup_and_the_locks_answers_try_again(
    settings, monkeypatch
):
    """The owner is looked up before the pools are locked, for a lead whose rule then is an owner rule;
    under the locks no CRM is asked. Should an admin's change make the lead's rule an owner rule in between
    (here: the lookup found another rule), the instant route answers 409 ``try_again`` and writes nothing."""
    settings.INSTANT_ROUTE_API_KEYS = [KEY]
    settings.BATON_OWNER_BACKEND = f"{__name__}.SlowCRM"
    SlowCRM.asked.clear()
    pool = make_pool("first_available", [make_rep("Ana")])
    meeting_type = make_meeting_type(pool, slug="call")
    RoutingRule.objects.create(
        meeting_type=meeting_type,
        order=1,
        name="Owners",
        conditions={"all": [{"field": "email_domain", "op": "equals", "value": "acme.io"}]},
        outcome=RoutingRule.Outcome.ACCOUNT_OWNER,
    )
    monkeypatch.setattr("leads.instant._owner_first", lambda meeting_type, lead: None)  # another rule then
    with time_machine.travel(MONDAY_NOON, tick=False):
        response = instant_post(instant_body("call"))
    assert (response.status_code, response.json()["code"]) == (409, "try_again")
    assert not SlowCRM.asked.is_set()
    assert not Lead.objects.exists() and not LedgerEntry.objects.exists()
