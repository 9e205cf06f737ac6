"""Microsoft Graph / MSAL accounts and calendars over time: an account known by its lasting id (renamed, or
two accounts under one address), a calendar deleted by its owner, the rep's zone changed, and a subscription
renewed after the webhook address moved."""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import time_machine

from calendars.models import BusyInterval, Calendar, CalendarConnection
from calendars.selectors import withheld_rep_ids
from calendars.services.connections import calendar_roles_set
from calendars.services.sync import calendar_sync
from calendars.services.watches import push_address, watch_ensure
from routing.models import Rep
from tests.calendars.calendars_harness import primary

pytestmark = pytest.mark.django_db
UTC = dt.UTC
Status = CalendarConnection.Status


def hour(days: float = 2) -> dt.datetime:
    return dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=days)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def sign_in_name(fake_ms, monkeypatch, names: dict[str, str]) -> None:
    """The id_token's ``preferred_username`` (the sign-in name MSAL reports) for some of the fake's users."""
    issue = fake_ms._tokens_for

    def tokens_for(email, nonce, scope):
        answer = issue(email, nonce, scope)
        if email in names:
            head, claims, sig = answer["id_token"].split(".")
            claims = {**_unb64(claims), "preferred_username": names[email], "name": names[email]}
            answer["id_token"] = f"{head}.{_b64(claims)}.{sig}"
        return answer

    monkeypatch.setattr(fake_ms, "_tokens_for", tokens_for)


def test_a_blocking_outlook_calendar_deleted_by_its_owner_does_not_withhold_the_rep(
    make_rep, ms_connection, fake_ms
):
    """A rep blocks on a second Outlook calendar ("Onsite"), then deletes it in Outlook. Every sync of it
    from then on fails with Graph's 404 ErrorItemNotFound (the calendar is gone), recorded as a provider
    failure: the calendar never syncs again, so after CALENDAR_STALENESS_MINUTES (3 h) the rep is withheld
    from every booking page, and stays so until the daily calendar-list refresh happens to remove the row
    (up to a day), although Baton knows all of the rep's remaining busy time. A calendar Graph says is not
    found should be dropped (or the account's list refreshed), not kept as a failing blocking calendar."""
    rep = make_rep()
    conn = ms_connection(rep, extra_calendars=("Onsite",))
    main = primary(conn)
    onsite = Calendar.objects.get(connection=conn, is_primary=False)
    calendar_roles_set(rep=rep, blocking_ids={main.pk, onsite.pk}, receiving_id=main.pk)
    start = hour()
    fake_ms.put_event(onsite.external_id, start=start, end=start + dt.timedelta(hours=8))
    assert calendar_sync(calendar_id=main.pk) == "full"
    assert calendar_sync(calendar_id=onsite.pk) == "full"
    user, _ = fake_ms.calendar(onsite.external_id)
    del user.calendars[onsite.external_id]  # the owner deletes the calendar in Outlook
    now = dt.datetime.now(UTC)
    calendar_sync(calendar_id=onsite.pk, now=now)  # the next poll (or a push)
    later = now + dt.timedelta(hours=4)
    calendar_sync(calendar_id=onsite.pk, now=later)
    assert calendar_sync(calendar_id=main.pk, now=later) == "incremental"
    assert withheld_rep_ids([rep.pk], now=later) == set()


def test_reconnecting_a_renamed_microsoft_account_does_not_leave_the_rep_withheld(
    make_rep, ms_connection, fake_ms, monkeypatch
):
    """A rep's Microsoft 365 sign-in name changes (a name change, a domain rebrand: jane.smith@ becomes
    jane.doe@; the account, its ``oid`` and MSAL's ``home_account_id``, stay the same). Microsoft then asks
    her to sign in again (her grant expired) and Baton marks the connection disconnected; she clicks
    Connect Microsoft 365 and signs in to the very same account. Baton identifies Microsoft accounts by the
    sign-in name only, so it stores a second connection to the same mailbox and keeps the old one
    ``disconnected``: the rep stays withheld from every booking page (a disconnected connection withholds
    its rep) although she just reconnected, and the same calendar now has two rows."""
    rep = make_rep()
    conn = ms_connection(rep, "jane.smith@contoso.example")
    cal = primary(conn)
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.revoke("jane.smith@contoso.example")
    fake_ms.expire_access_tokens()
    assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    # the tenant renames the user: same account (oid, home_account_id), new sign-in name
    sign_in_name(fake_ms, monkeypatch, {"jane.smith@contoso.example": "jane.doe@contoso.example"})
    fake_ms.users["jane.smith@contoso.example"].email = "jane.doe@contoso.example"
    again = ms_connection(rep, "jane.smith@contoso.example")  # signs in to the same account again
    assert CalendarConnection.objects.filter(rep=rep).count() == 1
    assert again.pk == conn.pk and again.status == Status.CONNECTED
    assert withheld_rep_ids([rep.pk], now=dt.datetime.now(UTC)) == set()


def test_signing_in_to_another_microsoft_account_with_the_same_address_keeps_the_first_ones_calendar(
    make_rep, ms_connection, fake_ms, monkeypatch
):
    """One address can name two Microsoft accounts (a work account and a personal Microsoft account made
    with the same e-mail: Microsoft's picker asks "which one?"). A rep connected the work account; later
    she clicks Connect again and picks the personal one. Baton matches connections by address only, so it
    overwrites the work connection's token cache with the other account's: the calendar-list refresh then
    deletes the work calendar (and its busy times: the rep's real meetings stop blocking, prospects book
    over them) and puts the personal account's calendar in its place, receiving bookings. Two different
    ``home_account_id`` values are two accounts."""
    rep = make_rep()
    conn = ms_connection(rep, "dana@contoso.example")
    work = primary(conn)
    start = hour()
    fake_ms.put_event(work.external_id, start=start, end=start + dt.timedelta(hours=1))
    assert calendar_sync(calendar_id=work.pk) == "full"
    personal = fake_ms.add_user("dana-personal")  # another account (another oid) …
    personal.email = "dana@contoso.example"  # … with the same address
    sign_in_name(fake_ms, monkeypatch, {"dana-personal": "dana@contoso.example"})
    ms_connection(rep, "dana-personal")
    assert Calendar.objects.filter(pk=work.pk, blocks_availability=True).exists()
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", "end")) == [
        (start, start + dt.timedelta(hours=1))
    ]


def test_changing_a_reps_time_zone_moves_their_outlook_all_day_events_with_it(
    make_rep, ms_connection, fake_ms
):
    """An admin corrects a rep's time zone (created as UTC, the rep works in Los Angeles). Outlook's
    all-day events are floating dates that Baton reads in the rep's zone, but only when Graph reports them
    again: the next syncs are incremental, so the rep's all-day "Vacation" keeps blocking midnight to
    midnight UTC (16:00 to 16:00 in Los Angeles) until the weekly full sync. Meanwhile the vacation day's
    08:00-16:00 is offered on booking pages (and the day before loses its late afternoon)."""
    rep = make_rep(timezone="UTC")
    cal = primary(ms_connection(rep))
    day = (dt.datetime.now(UTC) + dt.timedelta(days=5)).date()
    fake_ms.put_event(
        cal.external_id,
        start=dt.datetime.combine(day, dt.time(0), tzinfo=UTC),
        end=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=UTC),
        all_day=True,
        subject="Vacation",
    )
    assert calendar_sync(calendar_id=cal.pk) == "full"
    Rep.objects.filter(pk=rep.pk).update(timezone="America/Los_Angeles")  # the admin's correction
    calendar_sync(calendar_id=cal.pk)  # the next poll
    la = ZoneInfo("America/Los_Angeles")
    expected = (
        dt.datetime.combine(day, dt.time(0), tzinfo=la).astimezone(UTC),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=la).astimezone(UTC),
    )
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", "end")) == [expected]


def test_renewing_a_graph_subscription_after_the_webhook_address_moved_points_it_at_the_new_address(
    make_rep, ms_connection, fake_ms, push, settings
):
    """Baton moves to another address (``CALENDAR_WEBHOOK_BASE_URL`` changed: a new domain). Google
    channels follow at their next renewal (a new channel is opened at the current address), but a Graph
    subscription is renewed by a PATCH of its expiry alone, so it keeps delivering every change
    notification (subscription id, clientState, event ids) to the old address, renewed forever: pushes
    never reach Baton again (calendars are only as fresh as the 15-minute poll), and whoever holds the old
    domain now receives the reps' calendar notifications. A renewal should move the subscription to the
    current address (PATCH ``notificationUrl``, or subscribe anew)."""
    cal = primary(ms_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    cal.refresh_from_db()
    moved = settings.CALENDAR_WEBHOOK_BASE_URL.replace("localhost", "127.0.0.1")
    assert moved != settings.CALENDAR_WEBHOOK_BASE_URL
    settings.CALENDAR_WEBHOOK_BASE_URL = moved  # the new address (reachable: Graph validates it)
    with time_machine.travel(cal.watch_expiration - dt.timedelta(hours=2)):
        assert watch_ensure(calendar_id=cal.pk) == "renewed"
    delivered_to = {sub_id: sub["notificationUrl"] for sub_id, sub in fake_ms.subscriptions.items()}
    for patch in fake_ms.requests_to("PATCH", "/v1.0/subscriptions/.*"):  # the fake keeps only the expiry
        if patch.json().get("notificationUrl") and patch.path.rsplit("/", 1)[-1] in delivered_to:
            delivered_to[patch.path.rsplit("/", 1)[-1]] = patch.json()["notificationUrl"]
    assert list(delivered_to.values()) == [push_address("microsoft")]


@pytest.mark.django_db(transaction=True)
def test_microsoft_connections_stored_before_calendars_0017_are_found_by_their_account(make_rep):
    """The two account fixes above for connections stored before ``account_key`` existed: migration 0017
    takes the key from each Microsoft connection's stored credentials (``home_account_id``), so the rep whose
    sign-in name changes after the upgrade reconnects into her connection; a row whose credentials cannot be
    read keeps no key and is still found by its address (as before), then takes the key of the sign-in."""
    from calendars.crypto import encrypt_secrets
    from calendars.services.connections import connection_create
    from tests.foundation.test_foundation_upgrades import migrate_latest, migrate_to

    rep = make_rep()
    home = "00000000-0000-0000-0000-0000000000aa.9188040d-6c67-4c5b-b112-36a304b66dad"
    try:
        apps = migrate_to([("calendars", "0016_calendar_retry_not_before")])
        stored = apps.get_model("calendars", "CalendarConnection").objects
        jane = stored.create(
            rep_id=rep.pk,
            provider="microsoft",
            status="disconnected",
            account_email="jane.smith@contoso.example",
            secret_blob=encrypt_secrets({"cache": "{}", "home_account_id": home}),
        )
        unreadable = stored.create(
            rep_id=rep.pk, provider="microsoft", account_email="sam@contoso.example", secret_blob="gAAAA-not"
        )
    finally:
        migrate_latest()
    assert CalendarConnection.objects.get(pk=jane.pk).account_key == home
    assert CalendarConnection.objects.get(pk=unreadable.pk).account_key == ""
    again = connection_create(
        rep=rep,
        provider="microsoft",
        secrets={"cache": "{}", "home_account_id": home},
        account_email="jane.doe@contoso.example",
    )
    assert (again.pk, again.account_email, again.status) == (jane.pk, "jane.doe@contoso.example", "connected")
    sam_secrets = {"cache": "{}", "home_account_id": "sam.tid"}
    sam = connection_create(
        rep=rep, provider="microsoft", secrets=sam_secrets, account_email="Sam@contoso.example"
    )
    assert (sam.pk, sam.account_key) == (unreadable.pk, "sam.tid")
    assert CalendarConnection.objects.filter(rep=rep).count() == 2
