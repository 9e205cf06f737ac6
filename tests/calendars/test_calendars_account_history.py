"""A Microsoft account known by its ``home_account_id`` over time (renamed while a calendar was out of
Baton; a row stored before calendars 0017 could fill its key), and a co-host's e-mail waiting for the lead's
video link at the outbox's attempt limit."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from booking import outbox
from booking.models import Booking, OutboxMessage
from booking.services import booking_create
from calendars.models import BookingEvent, Calendar
from calendars.services.connections import calendar_delete
from calendars.services.writeback import booking_events_sync
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_booking_rep
from tests.booking.test_booking_invitations_held import google_connect
from tests.calendars.calendars_harness import primary
from tests.calendars.test_calendars_graph_accounts import sign_in_name

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def test_a_renamed_accounts_reconnect_takes_back_the_events_of_a_calendar_listed_again(
    make_rep, ms_connection, fake_ms, make_booking, monkeypatch
):
    """Jane's Outlook calendar receives her bookings; Baton wrote Pat's meeting into it. The calendar
    leaves Baton for a while (an admin removed it, or the list refresh did), so the meeting's event record
    keeps only where it was written: the account's address and the calendar's id. Then the tenant renames
    Jane (jane.smith@ becomes jane.doe@; same account, same ``home_account_id``) and she reconnects: Baton
    finds her connection by its key and moves its address and its events' to the new name, but not the
    records of that calendar's events, which still name the old address. The list brings the calendar
    back; ``_events_reclaim`` looks for orphans under the new address only, so Pat's event is never linked
    again. Pat then cancels: Baton cannot cancel the Outlook event (``pending`` for ever), and the meeting
    stays in Jane's calendar, blocking her time, with Pat still invited."""
    rep = make_rep()
    conn = ms_connection(rep, "jane.smith@contoso.example")
    cal = primary(conn)
    booking = make_booking(rep)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    calendar_delete(calendar=Calendar.objects.get(pk=cal.pk))  # the calendar leaves Baton for a while
    event = BookingEvent.objects.get(booking=booking)
    assert event.calendar_id is None and event.account_email == "jane.smith@contoso.example"
    # the tenant renames the user: same account (oid, home_account_id), new sign-in name
    sign_in_name(fake_ms, monkeypatch, {"jane.smith@contoso.example": "jane.doe@contoso.example"})
    fake_ms.users["jane.smith@contoso.example"].email = "jane.doe@contoso.example"
    again = ms_connection(rep, "jane.smith@contoso.example")  # reconnects; the list has the calendar again
    assert again.pk == conn.pk and again.account_email == "jane.doe@contoso.example"
    listed = Calendar.objects.get(connection=again, external_id=cal.external_id)
    event.refresh_from_db()
    assert event.calendar_id == listed.pk, "the event Baton wrote there is no longer linked to its calendar"
    Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.CANCELLED, sequence=1)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "cancelled"}


def test_a_co_hosts_invitation_is_not_lost_while_it_waits_for_the_lead_video_link(
    fake_google, mailoutbox, django_capture_on_commit_callbacks, settings
):
    """A group video demo: Ann (AE) leads with a Google calendar, Sol (SE) has none, so Baton's e-mail is
    Sol's only invitation, and it waits (``email_bodies.with_link``, ``LinkPending``) for the Meet link
    Ann's calendar write makes, for at most 15 minutes, after which it goes without it "as before". Google
    is down for Ann's write this morning. An installation that gives outbox rows 3 attempts
    (``BOOKING_OUTBOX_MAX_ATTEMPTS``: 30 s, then 1 min apart) lets Sol's e-mail die waiting: each wait is a
    failed attempt, the third one is the last, all of them long before the 15 minutes are up. Sol is never
    told of the meeting he co-hosts (no e-mail, no invitation), though the wait was only ever meant to
    add a link. A waiting e-mail's last attempt should send it without the link."""
    settings.BOOKING_OUTBOX_MAX_ATTEMPTS = 3
    settings.BOOKING_RATE_LIMIT = ""
    with time_machine.travel(NOW, tick=False) as clock:
        ann, sol = make_booking_rep("Ann AE"), make_booking_rep("Sol SE")
        google_connect(fake_google, ann)
        fake_google.add_fault("POST", r"/calendar/v3/calendars/.*/events", status=503, times=-1)
        pool = make_pool("group", [ann, sol], roles=["ae", "se"])
        meeting_type = make_meeting_type(pool, slug="group-demo")
        with django_capture_on_commit_callbacks(execute=True):
            created = booking_create(
                meeting_type=meeting_type, start=START, name="Pat", email="pat@example.org", timezone="UTC"
            ).body
        assert [h["name"] for h in created["hosts"]] == ["Ann AE", "Sol SE"]
        for _ in range(4):  # the retries, each once its back-off is over (well within the 15 minutes)
            clock.shift(dt.timedelta(minutes=2))
            outbox.sweep(now=dt.datetime.now(UTC))
        to_sol = [m for m in mailoutbox if m.to == [sol.email]]
        row = OutboxMessage.objects.get(handler="email.host", payload__host__rep_id=sol.pk)
        assert to_sol, f"Sol's e-mail was never sent: {row.status} after {row.attempts}: {row.last_error}"


@pytest.mark.django_db(transaction=True)
def test_a_work_account_stored_before_0017_is_not_replaced_by_a_personal_one_under_its_address(
    make_rep, settings
):
    """Dana connected her work Microsoft 365 account before the upgrade. The upgrade's ``migrate`` runs in a
    release job that has the database settings but not ``TOKEN_ENCRYPTION_KEYS`` (nothing else in a
    migration ever needed them), so calendars 0017 reads no credentials and leaves her connection's
    ``account_key`` empty ("matched by its address, as before"). Later she clicks Connect again and picks
    her personal Microsoft account, made with the same address: the connect knows the new account's
    ``home_account_id``, but a keyless row is matched by its address alone, so the personal account's
    token cache overwrites the work connection (the fix for two accounts under one address does not hold
    for any connection stored before it): the next list refresh deletes the work calendar and its busy
    times, and prospects book over Dana's real meetings. The row's own credentials, which the running app
    can read, say which account it is."""
    from calendars.crypto import decrypt_secrets, encrypt_secrets
    from calendars.models import CalendarConnection
    from calendars.services.connections import connection_create
    from tests.foundation.test_foundation_upgrades import migrate_latest, migrate_to

    rep = make_rep()
    keys = list(settings.TOKEN_ENCRYPTION_KEYS)
    work_id = "00000000-0000-0000-0000-0000000000aa.9188040d-6c67-4c5b-b112-36a304b66dad"
    try:
        apps = migrate_to([("calendars", "0016_calendar_retry_not_before")])
        work = (
            apps.get_model("calendars", "CalendarConnection")
            .objects.create(
                rep_id=rep.pk,
                provider="microsoft",
                account_email="dana@contoso.example",
                secret_blob=encrypt_secrets({"cache": "{}", "home_account_id": work_id}),
            )
            .pk
        )
        settings.TOKEN_ENCRYPTION_KEYS = []  # the migrate job's environment
    finally:
        migrate_latest()
        settings.TOKEN_ENCRYPTION_KEYS = keys
    personal_id = "00000000-0000-0000-0040-000000000bbb.9188040d-6c67-4c5b-b112-36a304b66dad"
    personal = connection_create(
        rep=rep,
        provider="microsoft",
        secrets={"cache": "{}", "home_account_id": personal_id},
        account_email="dana@contoso.example",
    )
    assert personal.pk != work, "the personal account took over the work account's connection"
    held = decrypt_secrets(CalendarConnection.objects.get(pk=work).secret_blob)
    assert held["home_account_id"] == work_id
