"""withheld_rep_ids and hosts_busy_live: who may be offered, and live free/busy at booking time."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine

from calendars.live import hosts_busy_live
from calendars.models import Calendar, CalendarConnection
from calendars.selectors import (
    booking_join_url,
    calendar_health,
    invitation_sent_by_provider,
    receiving_calendar,
    withheld_rep_ids,
)
from calendars.services.sync import calendar_sync

pytestmark = pytest.mark.django_db
Status = CalendarConnection.Status


def slot(days=2, hour=14, minutes=30):
    start = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0) + dt.timedelta(
        days=days
    )
    return start, start + dt.timedelta(minutes=minutes)


def primary(conn) -> Calendar:
    return Calendar.objects.get(connection=conn, is_primary=True)


def test_reps_without_calendars_are_never_withheld(make_rep):
    reps = [make_rep(), make_rep()]
    assert withheld_rep_ids([r.pk for r in reps], now=dt.datetime.now(dt.UTC)) == set()
    assert withheld_rep_ids([], now=dt.datetime.now(dt.UTC)) == set()


def test_withheld_until_the_first_sync_then_after_the_staleness_bound(make_rep, google_connection, settings):
    settings.CALENDAR_STALENESS_MINUTES = 60
    rep = make_rep()
    cal = primary(google_connection(rep))
    now = dt.datetime.now(dt.UTC)
    assert withheld_rep_ids([rep.pk], now=now) == {rep.pk}  # connected, never synced
    calendar_sync(calendar_id=cal.pk, now=now)
    assert withheld_rep_ids([rep.pk], now=now + dt.timedelta(minutes=59)) == set()
    assert withheld_rep_ids([rep.pk], now=now + dt.timedelta(minutes=61)) == {rep.pk}


def test_non_blocking_calendars_do_not_count_for_staleness(make_rep, google_connection):
    rep = make_rep()
    conn = google_connection(rep, extra_calendars=("Holidays",))
    calendar_sync(calendar_id=primary(conn).pk)
    assert withheld_rep_ids([rep.pk], now=dt.datetime.now(dt.UTC)) == set()


def test_disconnected_and_never_listed_connections_withhold(make_rep, google_connection):
    rep, other = make_rep(), make_rep()
    conn = google_connection(rep)
    calendar_sync(calendar_id=primary(conn).pk)
    CalendarConnection.objects.filter(pk=conn.pk).update(status=Status.DISCONNECTED)
    CalendarConnection.objects.create(
        rep=other, provider="google", secret_blob="x", account_email="o@example.com"
    )
    assert withheld_rep_ids([rep.pk, other.pk], now=dt.datetime.now(dt.UTC)) == {rep.pk, other.pk}


def test_withheld_uses_one_query_for_any_number_of_reps(make_rep, django_assert_num_queries):
    reps = [make_rep() for _ in range(20)]
    with django_assert_num_queries(1):
        withheld_rep_ids([r.pk for r in reps], now=dt.datetime.now(dt.UTC))


def test_calendar_health_names_the_reps_a_live_check_would_ask(
    make_rep, google_connection, ms_connection, ics_connection
):
    from calendars_harness import fixture_bytes

    google, ms, ics, off, cut, plain = (make_rep() for _ in range(6))
    for conn in (
        google_connection(google),
        ms_connection(ms),
        ics_connection(ics, fixture_bytes("google_export_xwr.ics")),
    ):
        calendar_sync(calendar_id=primary(conn).pk)
    Calendar.objects.filter(connection=google_connection(off, "off@example.com")).update(
        blocks_availability=False, last_synced_at=dt.datetime.now(dt.UTC)
    )
    CalendarConnection.objects.filter(pk=google_connection(cut, "cut@example.com").pk).update(
        status=Status.DISCONNECTED
    )
    ids = [r.pk for r in (google, ms, ics, off, cut, plain)]
    health = calendar_health(ids, now=dt.datetime.now(dt.UTC))
    assert health.live == {google.pk, ms.pk}  # not the feed, the non-blocking calendar, the revoked grant
    assert cut.pk in health.withheld and not health.withheld & {google.pk, ms.pk, ics.pk, plain.pk}
    assert health.withheld == withheld_rep_ids(ids, now=dt.datetime.now(dt.UTC))


def test_receiving_calendar_and_invitation_rule(make_rep, google_connection, ics_connection):
    from calendars_harness import fixture_bytes

    google_rep, ics_rep = make_rep(), make_rep()
    conn = google_connection(google_rep)
    ics_connection(ics_rep, fixture_bytes("google_export_xwr.ics"))
    assert receiving_calendar(google_rep.pk) == primary(conn)
    assert invitation_sent_by_provider(google_rep.pk) is True
    assert invitation_sent_by_provider(ics_rep.pk) is False  # read-only feed: the booking email invites
    CalendarConnection.objects.filter(pk=conn.pk).update(status=Status.DISCONNECTED)
    assert invitation_sent_by_provider(google_rep.pk) is False
    assert booking_join_url(12345) == ""


def test_live_check_reports_busy_hosts_only(make_rep, google_connection, ms_connection, fake_google, fake_ms):
    g_busy, g_free, m_busy, plain = make_rep(), make_rep(), make_rep(), make_rep()
    start, end = slot()
    fake_google.put_event(
        primary(google_connection(g_busy)).external_id,
        start=start - dt.timedelta(minutes=15),
        end=start + dt.timedelta(minutes=15),
    )
    google_connection(g_free)
    fake_google.put_event(
        primary(google_connection(make_rep(), "x@example.com")).external_id, start=start, end=end
    )
    fake_ms.put_event(
        primary(ms_connection(m_busy)).external_id,
        start=start + dt.timedelta(minutes=20),
        end=end + dt.timedelta(hours=1),
    )
    assert hosts_busy_live([g_busy.pk, g_free.pk, m_busy.pk, plain.pk], start, end) == {g_busy.pk, m_busy.pk}


def test_live_check_ignores_a_provider_that_is_too_slow(
    make_rep, google_connection, ms_connection, fake_google, fake_ms
):
    slow_rep, fast_rep = make_rep(), make_rep()
    start, end = slot()
    fake_google.put_event(primary(google_connection(slow_rep)).external_id, start=start, end=end)
    fake_ms.put_event(primary(ms_connection(fast_rep)).external_id, start=start, end=end)
    fake_google.add_fault("POST", "/calendar/v3/freeBusy", delay=3.0, times=-1, passthrough=True)
    began = time.monotonic()
    assert hosts_busy_live([slow_rep.pk, fast_rep.pk], start, end, timeout_seconds=0.8) == {fast_rep.pk}
    assert time.monotonic() - began < 1.5


def test_live_check_failures_leave_the_decision_to_synced_data(make_rep, google_connection, fake_google):
    rep = make_rep()
    start, end = slot()
    fake_google.put_event(primary(google_connection(rep)).external_id, start=start, end=end)
    fake_google.add_fault("POST", "/calendar/v3/freeBusy", status=500, times=-1)
    assert hosts_busy_live([rep.pk], start, end) == set()
    fake_google.clear_faults()
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    assert hosts_busy_live([rep.pk], start, end) == set()


def test_live_check_stores_refreshed_tokens(make_rep, google_connection, fake_google):
    from calendars.crypto import decrypt_secrets

    rep = make_rep()
    conn = google_connection(rep)
    before = decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)["token"]
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)):  # the access token expired
        start, end = slot(days=3)
        assert hosts_busy_live([rep.pk], start, end) == set()
    after = decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)["token"]
    assert after != before and after in fake_google.access_tokens
