"""Lifecycle of people and data over months: a rep who left (deactivated) and what Baton still hands them, and
a lead deleted at the prospect's request."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse

from booking import outbox
from booking.models import Booking, BookingHost, OutboxMessage
from leads.accounts import accounts_learn_owners
from leads.models import Account, Lead, RoutingRule
from leads.owners import owner_lookup
from routing.models import Rep
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
ROUTE = "/api/v1/meeting-types/demo/route"
QUESTIONS = [
    {"key": "size", "label": "Size", "type": "select", "options": ["1-10", "11-50", "51+"], "required": True},
]


def held_meeting(meeting_type, rep, email: str, *, days_ago: int) -> None:
    """A meeting with ``email`` hosted by ``rep`` that took place ``days_ago`` days ago (completed)."""
    start = NOW - dt.timedelta(days=days_ago)
    booking = Booking.objects.create(
        meeting_type=meeting_type, pool=meeting_type.pool, start=start, end=start + dt.timedelta(minutes=30),
        prospect_name="Kim", prospect_email=email, prospect_timezone="UTC",
        manage_token_hash=f"held-{email}-{days_ago}", status=Booking.Status.COMPLETED,
    )  # fmt: skip
    BookingHost.objects.create(
        booking=booking, rep=rep, blocked_start=start, blocked_end=booking.end, assigned_at=start
    )


@pytest.fixture
def acme():
    """Ana and Ben in a first_available pool behind the meeting type ``demo``. Ana hosted acme.io's meetings
    (pat@ and lee@ more recently), Ben one with kim@acme.io; then Ana left the company: the admin
    deactivated her (her memberships stay, as the admin leaves them)."""
    ana, ben = make_rep("Ana"), make_rep("Ben")
    pool = make_pool("first_available", [ana, ben])
    demo = make_meeting_type(pool, slug="demo", questions=QUESTIONS)
    held_meeting(demo, ben, "kim@acme.io", days_ago=40)
    held_meeting(demo, ana, "pat@acme.io", days_ago=20)
    held_meeting(demo, ana, "lee@acme.io", days_ago=10)
    Rep.objects.filter(pk=ana.pk).update(active=False)
    return demo, pool, ana, ben


def test_a_returning_prospect_of_a_rep_who_left_goes_to_the_companys_other_owner(api, acme):
    """The account-owner lookup skips an Account whose owner is deactivated, but its booking-history step
    still answers with the departed rep: a prospect who last met Ana is matched to Ana, the route is then
    "owner has no free slot" and falls back to the whole pool, though Ben, still here, met the same company.
    The history should skip departed reps as the Account step does, and find Ben."""
    demo, pool, ana, ben = acme
    RoutingRule.objects.create(
        meeting_type=demo, order=1, name="Returning", outcome="account_owner", pool=pool
    )
    body = {"email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin", "answers": {"size": "51+"}}
    response = api.post(ROUTE, body, format="json")
    assert response.status_code == 200, response.json()
    owner = Lead.objects.get().decision["owner"]
    assert owner.get("rep_id") != ana.pk, f"matched to Ana, who left the company: {owner}"
    assert owner.get("rep_id") == ben.pk and owner.get("used") is True, owner


def test_learning_account_owners_never_hands_an_account_to_a_rep_who_left(acme):
    """``manage.py learn_account_owners`` gives acme.io to the rep who hosted most of its meetings, counting
    deactivated reps: Ana, who left, becomes the learned owner, although Ben, active, also held one. The
    account then counts as owned, so no later run gives it to anyone who is still here."""
    demo, pool, ana, ben = acme
    assert accounts_learn_owners() == 1
    account = Account.objects.get(domain="acme.io")
    assert account.owner_id != ana.pk, "the learned owner is a deactivated rep"
    assert account.owner_id == ben.pk


def test_a_deleted_disqualified_lead_is_not_sent_to_the_nurture_webhook_afterwards(
    api, admin_client, settings
):
    """A prospect is disqualified; their lead's ``lead.disqualified`` outbox row (name, e-mail, answers) waits
    for delivery to the nurture webhook. The admin deletes the lead (the prospect asked to be erased), yet
    the row stays and is still delivered: the erased prospect's data is posted to the marketing tool
    afterwards (and shown on the outbox page for 30 more days). Deleting a booking takes its messages with
    it; deleting a lead should too."""
    settings.BATON_NURTURE_WEBHOOK_URL = "https://hooks.example.com/nurture/secret"
    demo = make_meeting_type(
        make_pool("first_available", [make_rep("Ana")]), slug="demo", questions=QUESTIONS
    )
    RoutingRule.objects.create(
        meeting_type=demo, order=1, name="Too small", outcome="disqualify", disqualify_message="Bye",
        conditions={"all": [{"field": "answers.size", "op": "equals", "value": "1-10"}]},
    )  # fmt: skip
    body = {"email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin", "answers": {"size": "1-10"}}
    assert api.post(ROUTE, body, format="json").json()["disqualified"] is True
    lead = Lead.objects.get()
    message_ids = list(OutboxMessage.objects.filter(event="lead.disqualified").values_list("pk", flat=True))
    assert message_ids

    response = admin_client.post(reverse("admin:leads_lead_delete", args=[lead.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Lead.objects.exists()

    with mock.patch("leads.outbox.requests.post") as post:
        post.return_value = mock.Mock(status_code=200, reason="OK", headers={})
        outbox.deliver_many(message_ids=message_ids, now=NOW + dt.timedelta(minutes=5))
    sent = [c.kwargs.get("json", {}).get("email") for c in post.call_args_list]
    assert sent == [], f"the deleted lead was posted to the nurture webhook: {sent}"
    assert not OutboxMessage.objects.filter(payload__email="pat@acme.io").exists()


def test_the_owner_backend_asks_on_past_a_departed_rep(acme):
    """What both routers ask (``owner_lookup``: the booking page's and the instant route's): Ana's own
    meetings with pat@ are passed over for Ben's with the same company."""
    demo, pool, ana, ben = acme
    match, _ = owner_lookup(email="pat@acme.io", domain="acme.io")
    assert (match.rep_id, match.source) == (ben.pk, "history_domain")
    Rep.objects.filter(pk=ben.pk).update(active=False)
    assert owner_lookup(email="pat@acme.io", domain="acme.io") == (None, "no owner found")


def test_learning_again_replaces_a_departed_learned_owner_but_not_an_imported_one(acme):
    demo, pool, ana, ben = acme
    learned = Account.objects.create(domain="acme.io", owner=ana, learned=True)
    held_meeting(demo, ana, "sam@beta.io", days_ago=5)
    held_meeting(demo, ben, "joe@beta.io", days_ago=30)
    imported = Account.objects.create(domain="beta.io", owner=ana, learned=False)  # the CRM's word
    assert accounts_learn_owners() == 1
    learned.refresh_from_db()
    imported.refresh_from_db()
    assert (learned.owner_id, learned.learned) == (ben.pk, True)
    assert (imported.owner_id, imported.learned) == (ana.pk, False)
    assert accounts_learn_owners() == 0  # Ben is still here: acme.io stays his


def disqualified_lead(api) -> Lead:
    demo = make_meeting_type(
        make_pool("first_available", [make_rep("Ana")]), slug="demo", questions=QUESTIONS
    )
    RoutingRule.objects.create(
        meeting_type=demo, order=1, name="Too small", outcome="disqualify", disqualify_message="Bye",
        conditions={"all": [{"field": "answers.size", "op": "equals", "value": "1-10"}]},
    )  # fmt: skip
    body = {"email": "pat@acme.io", "name": "Pat", "timezone": "Europe/Berlin", "answers": {"size": "1-10"}}
    assert api.post(ROUTE, body, format="json").json()["disqualified"] is True
    return Lead.objects.get()


def test_a_lead_whose_hand_off_is_being_delivered_is_deleted_once_it_is_done(api, admin_client):
    """A row leased by a worker is being posted right now: that cannot be stopped, so the deletion waits
    (and says so) rather than hide that the data went out; once delivered, the lead goes with its row and
    the admin is told the webhook had it."""
    lead = disqualified_lead(api)
    rows = OutboxMessage.objects.filter(event="lead.disqualified")
    rows.update(claimed_until=NOW + dt.timedelta(minutes=4), attempts=1)
    url = reverse("admin:leads_lead_delete", args=[lead.pk])
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "being sent to the nurture webhook right now" in response.content.decode()
    changelist = reverse("admin:leads_lead_changelist")
    action = {"action": "delete_selected", "_selected_action": [lead.pk], "post": "yes"}
    response = admin_client.post(changelist, action, follow=True)
    assert "being sent to the nurture webhook right now" in response.content.decode()
    assert Lead.objects.exists() and rows.exists()

    rows.update(claimed_until=None, status=OutboxMessage.Status.DELIVERED, delivered_at=NOW)
    response = admin_client.post(changelist, action, follow=True)
    assert "Already sent to the nurture webhook before the deletion: pat@acme.io" in response.content.decode()
    assert not Lead.objects.exists() and not OutboxMessage.objects.exists()


def test_the_nurture_handler_does_not_send_a_lead_deleted_another_way(api, settings):
    """A lead deleted without ``leads_delete`` (its meeting type was deleted) leaves its rows: they are
    done without a call, not retried."""
    settings.BATON_NURTURE_WEBHOOK_URL = "https://hooks.example.com/nurture/secret"
    lead = disqualified_lead(api)
    Lead.objects.filter(pk=lead.pk).delete()
    (row,) = OutboxMessage.objects.filter(event="lead.disqualified")
    with mock.patch("leads.outbox.requests.post") as post:
        assert outbox.deliver(message_id=row.pk, now=NOW + dt.timedelta(minutes=5)) == "delivered"
    post.assert_not_called()
    row.refresh_from_db()
    assert row.result == f"not sent: lead {lead.pk} was deleted"
