"""Sync service: busy rows follow the provider; failures keep the last busy times until the staleness
bound; revoked grants disconnect and withhold the rep; push requests collapse; one bad calendar never
blocks the others."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from calendars.models import BusyInterval, Calendar, CalendarConnection
from calendars.selectors import withheld_rep_ids
from calendars.services import sync as sync_service
from calendars.services.connections import calendar_roles_set, connection_delete
from calendars.services.sync import calendar_sync, due_calendar_ids, request_sync

pytestmark = pytest.mark.django_db
Status = CalendarConnection.Status


# One anchor for the whole run: a test that travels forward (or runs across midnight) still names the same
# instants with ``soon`` as when it made its events.
TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def soon(days=1, hour=15) -> dt.datetime:
    return TODAY + dt.timedelta(days=days, hours=hour)


def primary(conn) -> Calendar:
    return Calendar.objects.get(connection=conn, is_primary=True)


def busy_of(rep) -> list[tuple[dt.datetime, dt.datetime]]:
    return list(BusyInterval.objects.filter(rep=rep).order_by("start").values_list("start", "end"))


def test_full_then_incremental_sync_mirrors_the_calendar(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = primary(google_connection(rep))
    a = fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    b = fake_google.put_event(cal.external_id, start=soon(2), end=soon(2, 16))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    assert busy_of(rep) == [(soon(1), soon(1, 16)), (soon(2), soon(2, 16))]
    row = BusyInterval.objects.get(rep=rep, start=soon(1))
    assert row.source == BusyInterval.Source.CALENDAR and row.external_id == f"{cal.pk}:{a['id']}"

    fake_google.cancel_event(cal.external_id, b["id"])
    fake_google.put_event(cal.external_id, start=soon(1, 9), end=soon(1, 10), event_id=a["id"])  # moved
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert busy_of(rep) == [(soon(1, 9), soon(1, 10))]
    cal.refresh_from_db()
    assert cal.last_error == "" and cal.sync_state and cal.window_end > soon(170)


def test_a_410_resyncs_the_whole_calendar(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = primary(google_connection(rep))
    fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    calendar_sync(calendar_id=cal.pk)
    fake_google.invalidate_sync_tokens(cal.external_id)
    fake_google.put_event(cal.external_id, start=soon(3), end=soon(3, 16))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    assert len(busy_of(rep)) == 2
    assert [r.query.get("syncToken") is not None for r in fake_google.requests_to("GET", ".*/events")] == [
        False,
        True,
        False,
    ]


def test_an_unchanged_full_sync_writes_nothing(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = primary(google_connection(rep))
    for day in range(1, 30):
        fake_google.put_event(cal.external_id, start=soon(day), end=soon(day, 16))
    calendar_sync(calendar_id=cal.pk)
    before = set(BusyInterval.objects.filter(rep=rep).values_list("pk", flat=True))
    with CaptureQueriesContext(db_connection) as queries:
        assert calendar_sync(calendar_id=cal.pk, force_full=True) == "full"
    assert set(BusyInterval.objects.filter(rep=rep).values_list("pk", flat=True)) == before
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "DELETE"))]
    assert writes == []


def test_the_window_rolls_forward_with_a_weekly_full_sync(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = primary(google_connection(rep))
    calendar_sync(calendar_id=cal.pk)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=3)):
        assert calendar_sync(calendar_id=cal.pk) == "incremental"
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=8)):
        assert calendar_sync(calendar_id=cal.pk) == "full"


def test_push_requests_collapse_into_one_queued_sync(
    make_rep, google_connection, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(sync_service, "_enqueue", queued.append)
    cal = primary(google_connection(make_rep()))
    with django_capture_on_commit_callbacks(execute=True):
        assert request_sync(calendar_id=cal.pk) is True
        assert request_sync(calendar_id=cal.pk) is False
        assert request_sync(calendar_id=cal.pk) is False
    assert queued == [cal.pk]
    calendar_sync(calendar_id=cal.pk)  # the sync starts: the flag clears, the next change queues again
    with django_capture_on_commit_callbacks(execute=True):
        assert request_sync(calendar_id=cal.pk) is True
    assert queued == [cal.pk, cal.pk]


def test_a_change_pushed_during_a_sync_gets_one_more_sync(
    make_rep, google_connection, fake_google, monkeypatch, django_capture_on_commit_callbacks
):
    """The rep adds an event while a sync runs (after it listed the calendar): the push queues a task, a
    worker runs it while the first sync holds the lease ("busy"), and the flag, still set, absorbs every
    later push. The first sync queues one more when it ends; before, the change waited for the lost-request
    sweep and the next poll (25 minutes), and the slot pages offered the time meanwhile."""
    queued: list[int] = []
    monkeypatch.setattr(sync_service, "_enqueue", queued.append)
    rep = make_rep()
    cal = primary(google_connection(rep))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    real_provider_for = sync_service.provider_for

    def listing_then_a_push(connection):
        provider = real_provider_for(connection)
        listed = provider.sync

        def sync(*args, **kwargs):
            result = listed(*args, **kwargs)
            fake_google.put_event(cal.external_id, start=soon(2), end=soon(2, 16))  # after the listing
            with django_capture_on_commit_callbacks(execute=True):
                assert request_sync(calendar_id=cal.pk) is True  # Google's push
            assert calendar_sync(calendar_id=queued.pop()) == "busy"  # its task, during this sync
            return result

        provider.sync = sync
        return provider

    monkeypatch.setattr(sync_service, "provider_for", listing_then_a_push)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert busy_of(rep) == [] and queued == [cal.pk]  # the first sync queued one more as it ended
    monkeypatch.setattr(sync_service, "provider_for", real_provider_for)
    assert calendar_sync(calendar_id=queued.pop()) == "incremental"
    assert busy_of(rep) == [(soon(2), soon(2, 16))] and queued == []


def test_a_running_sync_holds_a_lease(make_rep, google_connection):
    cal = primary(google_connection(make_rep()))
    Calendar.objects.filter(pk=cal.pk).update(
        sync_lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    )
    assert calendar_sync(calendar_id=cal.pk) == "busy"
    Calendar.objects.filter(pk=cal.pk).update(
        sync_lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )
    assert calendar_sync(calendar_id=cal.pk) == "full"  # an expired lease (crashed worker) is taken over
    assert Calendar.objects.get(pk=cal.pk).sync_lease_until is None


def test_a_down_provider_keeps_busy_times_until_the_staleness_bound(
    make_rep, google_connection, fake_google, settings
):
    settings.CALENDAR_STALENESS_MINUTES = 180
    good_rep, bad_rep = make_rep(), make_rep()
    good, bad = primary(google_connection(good_rep)), primary(google_connection(bad_rep))
    fake_google.put_event(bad.external_id, start=soon(1), end=soon(1, 16))
    calendar_sync(calendar_id=good.pk)
    calendar_sync(calendar_id=bad.pk)
    synced_at = dt.datetime.now(dt.UTC)
    fake_google.add_fault(
        "GET",
        f"/calendar/v3/calendars/{bad.external_id.replace('@', '%40')}/events",
        status=503,
        times=-1,
        body=b'{"error": {"code": 503, "message": "Backend Error"}}',
    )
    with time_machine.travel(synced_at + dt.timedelta(minutes=100)):
        assert calendar_sync(calendar_id=bad.pk) == "failed"
        assert calendar_sync(calendar_id=good.pk) == "incremental"
        conn = CalendarConnection.objects.get(pk=bad.connection_id)
        assert conn.status == Status.ERROR and "503" in conn.last_error
        assert busy_of(bad_rep) == [(soon(1), soon(1, 16))]  # still in force
        assert withheld_rep_ids([good_rep.pk, bad_rep.pk], now=dt.datetime.now(dt.UTC)) == set()
    with time_machine.travel(synced_at + dt.timedelta(minutes=181)):
        calendar_sync(calendar_id=good.pk)
        assert withheld_rep_ids([good_rep.pk, bad_rep.pk], now=dt.datetime.now(dt.UTC)) == {bad_rep.pk}
    fake_google.clear_faults()
    with time_machine.travel(synced_at + dt.timedelta(minutes=190)):
        assert calendar_sync(calendar_id=bad.pk) == "incremental"
        assert CalendarConnection.objects.get(pk=bad.connection_id).status == Status.CONNECTED
        assert withheld_rep_ids([good_rep.pk, bad_rep.pk], now=dt.datetime.now(dt.UTC)) == set()


def test_a_timing_out_provider_fails_fast_and_keeps_data(make_rep, google_connection, fake_google, settings):
    settings.CALENDAR_HTTP_TIMEOUT_SECONDS = 1
    rep = make_rep()
    cal = primary(google_connection(rep))
    fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    calendar_sync(calendar_id=cal.pk)
    fake_google.add_fault("*", ".*", delay=2.5, times=-1, passthrough=True)
    assert calendar_sync(calendar_id=cal.pk) == "failed"
    assert "did not answer" in Calendar.objects.get(pk=cal.pk).last_error
    assert len(busy_of(rep)) == 1


def test_an_unreadable_provider_answer_fails_the_sync_with_a_message_and_keeps_data(
    make_rep, google_connection, fake_google, monkeypatch, caplog
):
    from calendars.providers import google

    rep = make_rep()
    cal = primary(google_connection(rep))
    fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    calendar_sync(calendar_id=cal.pk)

    def unreadable(item, zone):
        raise KeyError("dateTime")  # e.g. an event shape the code does not know

    monkeypatch.setattr(google, "busy_from_event", unreadable)
    assert calendar_sync(calendar_id=cal.pk, force_full=True) == "failed"  # a KeyError out of the task before
    assert "could not be read (KeyError)" in Calendar.objects.get(pk=cal.pk).last_error
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == Status.ERROR
    assert len(busy_of(rep)) == 1 and "unreadable answer" in caplog.text


def test_a_revoked_grant_disconnects_withholds_and_tells_people(
    make_rep, google_connection, fake_google, caplog
):
    rep, other = make_rep("Dana"), make_rep("Sam")
    cal = primary(google_connection(rep))
    other_cal = primary(google_connection(other))
    calendar_sync(calendar_id=cal.pk)
    calendar_sync(calendar_id=other_cal.pk)
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    # Sam's access token expired too, but his grant still refreshes
    assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    assert calendar_sync(calendar_id=other_cal.pk) == "incremental"
    conn = CalendarConnection.objects.get(pk=cal.connection_id)
    assert conn.status == Status.DISCONNECTED and "invalid_grant" in conn.last_error
    assert withheld_rep_ids([rep.pk, other.pk], now=dt.datetime.now(dt.UTC)) == {rep.pk}
    assert sorted(m.to[0] for m in mail.outbox) == ["ops@example.com", rep.email]
    assert "reconnect" in mail.outbox[0].body
    assert any("disconnected" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert calendar_sync(calendar_id=cal.pk) == "skipped"  # no more calls with a dead grant
    assert len(mail.outbox) == 2  # told once


def test_microsoft_invalid_grant_disconnects(make_rep, ms_connection, fake_ms):
    rep = make_rep()
    cal = primary(ms_connection(rep))
    fake_ms.revoke(rep.email)
    fake_ms.expire_access_tokens()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):  # MSAL's cached token expires
        assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == Status.DISCONNECTED


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_a_refused_client_secret_fails_syncs_without_disconnecting_anyone(
    provider, request, make_rep, settings
):
    """``invalid_client`` is Baton's own app registration (a wrong or rotated client secret), not the rep's
    grant: the syncs fail and say what to fix, and nobody is disconnected or told to reconnect (before, every
    rep was disconnected and e-mailed, and reconnecting could not help)."""
    fake = request.getfixturevalue("fake_google" if provider == "google" else "fake_ms")
    connect = request.getfixturevalue("google_connection" if provider == "google" else "ms_connection")
    rep = make_rep()
    cal = primary(connect(rep))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake.client_secret = "the-new-secret"  # rotated at the provider, not yet in Baton's settings
    fake.expire_access_tokens()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):  # cached tokens expire
        assert calendar_sync(calendar_id=cal.pk) == "failed"
    conn = CalendarConnection.objects.get(pk=cal.connection_id)
    secret = "GOOGLE_CLIENT_SECRET" if provider == "google" else "MS_CLIENT_SECRET"
    assert conn.status == Status.ERROR and secret in Calendar.objects.get(pk=cal.pk).last_error
    assert mail.outbox == []
    fake.client_secret = None  # fixed: the next sync works with the same grant
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):
        assert calendar_sync(calendar_id=cal.pk) == "incremental"


def test_microsoft_token_refresh_updates_each_connections_own_msal_cache(make_rep, ms_connection, fake_ms):
    """One serialized MSAL cache per connection, encrypted: a silent refresh re-stores that connection's cache
    (with the new access token) and leaves the other connection's cache alone."""
    from calendars.crypto import decrypt_secrets

    dana, sam = make_rep("Dana"), make_rep("Sam")
    dana_cal, sam_cal = primary(ms_connection(dana)), primary(ms_connection(sam))

    def stored(cal):
        blob = CalendarConnection.objects.get(pk=cal.connection_id).secret_blob
        assert "access_token" not in blob and "home_account_id" not in blob  # encrypted at rest
        return decrypt_secrets(blob)

    dana_before, sam_before = stored(dana_cal), stored(sam_cal)
    assert dana_before["home_account_id"] != sam_before["home_account_id"]
    assert dana.email not in sam_before["cache"] and sam.email not in dana_before["cache"]
    fake_ms.expire_access_tokens()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):  # MSAL's cached token expires
        assert calendar_sync(calendar_id=dana_cal.pk) == "full"
    dana_after, sam_after = stored(dana_cal), stored(sam_cal)
    assert dana_after["cache"] != dana_before["cache"]
    assert dana_after["home_account_id"] == dana_before["home_account_id"]
    assert sam_after == sam_before
    fresh = [t for t, (owner, expires) in fake_ms.access_tokens.items() if owner == dana.email and expires]
    assert any(token in dana_after["cache"] for token in fresh)


def test_ics_feed_sync_replaces_the_set(make_rep, ics_connection, fake_ics, settings):
    from calendars_harness import fixture_bytes

    settings.ICAL_UID_DOMAIN = "book.example.com"  # the fixture's own invitation is skipped, not another's
    rep = make_rep(timezone="America/Los_Angeles")
    conn = ics_connection(rep, fixture_bytes("allday_floating.ics"))
    cal = primary(conn)
    assert cal.blocks_availability and not cal.receives_bookings and cal.name == "Personal"
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)):
        assert calendar_sync(calendar_id=cal.pk) == "full"
        assert BusyInterval.objects.filter(rep=rep, source=BusyInterval.Source.ICS).count() == 8
        assert calendar_sync(calendar_id=cal.pk) == "unchanged"
        (secret,) = fake_ics.feeds  # the rep's calendar app republishes the feed with other events
        fake_ics.feeds[secret] = fixture_bytes("google_export_xwr.ics")
        assert calendar_sync(calendar_id=cal.pk) == "full"
        assert BusyInterval.objects.filter(rep=rep).count() == 10


def test_a_calendar_that_stops_blocking_loses_its_busy_rows(make_rep, google_connection, fake_google):
    rep = make_rep()
    conn = google_connection(rep, extra_calendars=("Team",))
    cal = primary(conn)
    team = Calendar.objects.get(connection=conn, is_primary=False)
    assert cal.blocks_availability and cal.receives_bookings and not team.blocks_availability
    fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    fake_google.put_event(team.external_id, start=soon(2), end=soon(2, 16))
    calendar_sync(calendar_id=cal.pk)
    assert calendar_sync(calendar_id=team.pk) == "skipped"
    to_sync = calendar_roles_set(rep=rep, blocking_ids={team.pk}, receiving_id=cal.pk)
    assert to_sync == [team.pk]
    assert busy_of(rep) == []
    calendar_sync(calendar_id=team.pk)
    assert busy_of(rep) == [(soon(2), soon(2, 16))]


def test_disconnecting_removes_calendars_and_busy_rows(make_rep, google_connection, fake_google):
    rep = make_rep()
    conn = google_connection(rep)
    cal = primary(conn)
    fake_google.put_event(cal.external_id, start=soon(1), end=soon(1, 16))
    calendar_sync(calendar_id=cal.pk)
    BusyInterval.objects.create(rep=rep, start=soon(5), end=soon(5, 16), source=BusyInterval.Source.MANUAL)
    connection_delete(connection=conn)
    assert list(BusyInterval.objects.filter(rep=rep).values_list("source", flat=True)) == ["manual"]
    assert not Calendar.objects.filter(pk=cal.pk).exists()


def test_due_calendars_follow_the_poll_intervals(make_rep, google_connection, ics_connection, settings):
    from calendars_harness import fixture_bytes

    settings.CALENDAR_POLL_MINUTES = 15
    settings.CALENDAR_ICS_POLL_MINUTES = 30
    g = primary(google_connection(make_rep()))
    i = primary(ics_connection(make_rep(), fixture_bytes("google_export_xwr.ics")))
    now = dt.datetime.now(dt.UTC)
    assert due_calendar_ids(now=now, ics=False) == [g.pk] and due_calendar_ids(now=now, ics=True) == [i.pk]
    calendar_sync(calendar_id=g.pk, now=now)
    calendar_sync(calendar_id=i.pk, now=now)
    assert due_calendar_ids(now=now + dt.timedelta(minutes=10), ics=False) == []
    assert due_calendar_ids(now=now + dt.timedelta(minutes=16), ics=False) == [g.pk]
    assert due_calendar_ids(now=now + dt.timedelta(minutes=16), ics=True) == []
    assert due_calendar_ids(now=now + dt.timedelta(minutes=31), ics=True) == [i.pk]
    # a request whose task got lost is released after 10 minutes so the sweep queues it again
    Calendar.objects.filter(pk=g.pk).update(sync_requested_at=now)
    due_calendar_ids(now=now + dt.timedelta(minutes=11), ics=False)
    assert Calendar.objects.get(pk=g.pk).sync_requested_at is None
