"""Busy-time sync at its edges: ICS instances that share a RECURRENCE-ID ("this and future" changes) or have
no UID, a Google full resync failing midway, token encryption keys rotated (docs/calendars.md)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from calendars.models import BusyInterval, Calendar
from calendars.providers.ics import busy_events, parse
from calendars.services.sync import calendar_sync

UTC = dt.UTC
MARCH = (dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 30, tzinfo=UTC))


def z(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def feed(*components: str) -> bytes:
    body = "".join(components)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Hunt//Hunt//EN\r\n" + body + "END:VCALENDAR\r\n"
    ).encode()


def spans(data: bytes, zone: str = "America/New_York", window=MARCH) -> list[tuple[dt.datetime, dt.datetime]]:
    return sorted((e.start, e.end) for e in busy_events(parse(data), window, ZoneInfo(zone)))


# A weekly 09:00 New York meeting; from 9 March on ("this and following") it moves to 14:00.
THIS_AND_FUTURE = feed(
    "BEGIN:VEVENT\r\nUID:weekly-sync@hunt\r\nDTSTAMP:20260101T000000Z\r\n"
    "DTSTART;TZID=America/New_York:20260302T090000\r\nDTEND;TZID=America/New_York:20260302T100000\r\n"
    "RRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\n",
    "BEGIN:VEVENT\r\nUID:weekly-sync@hunt\r\nDTSTAMP:20260101T000000Z\r\n"
    "RECURRENCE-ID;RANGE=THISANDFUTURE;TZID=America/New_York:20260309T090000\r\n"
    "DTSTART;TZID=America/New_York:20260309T140000\r\nDTEND;TZID=America/New_York:20260309T150000\r\n"
    "END:VEVENT\r\n",
)


def test_ics_this_and_future_exception_keeps_every_moved_instance():
    """RECURRENCE-ID;RANGE=THISANDFUTURE moves the 9th, 16th and 23rd to 14:00 EDT (18:00 UTC).
    recurring-ical-events yields the three instances, each carrying that change's RECURRENCE-ID: their
    external ids come from their own starts, so ``busy_events`` keeps all three (it kept one)."""
    got = spans(THIS_AND_FUTURE)
    assert got == [
        (z(2026, 3, 2, 14), z(2026, 3, 2, 15)),
        (z(2026, 3, 9, 18), z(2026, 3, 9, 19)),
        (z(2026, 3, 16, 18), z(2026, 3, 16, 19)),
        (z(2026, 3, 23, 18), z(2026, 3, 23, 19)),
    ]


def test_ics_this_and_future_exception_blocks_every_moved_instance_after_a_sync(make_rep, ics_connection):
    """The same feed through the sync service: the rep's busy rows hold the three moved meetings."""
    import time_machine

    with time_machine.travel(z(2026, 3, 1, 12), tick=False):
        rep = make_rep(timezone="America/New_York")
        conn = ics_connection(rep, THIS_AND_FUTURE)
        cal = Calendar.objects.get(connection=conn)
        assert calendar_sync(calendar_id=cal.pk) == "full"
    rows = sorted(BusyInterval.objects.filter(rep=rep).values_list("start", "end"))
    assert rows == [
        (z(2026, 3, 2, 14), z(2026, 3, 2, 15)),
        (z(2026, 3, 9, 18), z(2026, 3, 9, 19)),
        (z(2026, 3, 16, 18), z(2026, 3, 16, 19)),
        (z(2026, 3, 23, 18), z(2026, 3, 23, 19)),
    ]


def test_ics_events_without_uid_at_the_same_start_both_block():
    """Two events of an (RFC 2445-era) feed without UID that start together: a 3-hour workshop and a
    30-minute call. Both are busy: without a UID their times tell them apart (keyed ``"|<start>"`` alike,
    the one listed last replaced the 3-hour block)."""
    data = feed(
        "BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Workshop\r\n"
        "DTSTART:20260310T150000Z\r\nDTEND:20260310T180000Z\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Call\r\n"
        "DTSTART:20260310T150000Z\r\nDTEND:20260310T153000Z\r\nEND:VEVENT\r\n",
    )
    got = spans(data, zone="UTC")
    blocked_until = max(end for _, end in got)
    assert blocked_until == z(2026, 3, 10, 18), got


# --- a failing sync keeps what it had; a rotated key still reads old blobs


@pytest.mark.django_db
def test_a_full_resync_failing_on_its_second_page_keeps_every_busy_row(
    make_rep, google_connection, fake_google
):
    from tests.fakes.http import json_response

    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rep = make_rep()
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    for day in (1, 2, 3):
        fake_google.put_event(
            cal.external_id, start=now + dt.timedelta(days=day), end=now + dt.timedelta(days=day, hours=1)
        )
    assert calendar_sync(calendar_id=cal.pk) == "full"
    before = sorted(BusyInterval.objects.filter(rep=rep).values_list("external_id", "start", "end"))
    state_before = Calendar.objects.get(pk=cal.pk).sync_state
    fake_google.page_size_cap = 1
    fake_google.invalidate_sync_tokens(cal.external_id)  # 410 → full sync, paged one event a page
    for i, (method, rx, handler) in enumerate(fake_google.routes):
        if method == "GET" and rx.pattern.endswith("/events$"):

            def failing_second_page(req, handler=handler):
                if req.query.get("pageToken"):
                    return json_response(500, {"error": {"code": 500, "message": "Backend Error"}})
                return handler(req)

            fake_google.routes[i] = (method, rx, failing_second_page)
    assert calendar_sync(calendar_id=cal.pk) == "failed"
    assert sorted(BusyInterval.objects.filter(rep=rep).values_list("external_id", "start", "end")) == before
    assert Calendar.objects.get(pk=cal.pk).sync_state == state_before


@pytest.mark.django_db
def test_a_refreshed_token_is_stored_under_the_new_key_while_the_old_key_still_decrypts(
    make_rep, google_connection, fake_google, settings
):
    from cryptography.fernet import Fernet

    from calendars.crypto import decrypt_secrets
    from calendars.models import CalendarConnection

    rep = make_rep()
    conn = google_connection(rep)
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    old_key, new_key = settings.TOKEN_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]  # rotation deployed, command not yet run
    fake_google.expire_access_tokens()
    assert calendar_sync(calendar_id=cal.pk) == "full"  # read with the old key, refreshed, stored
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]
    assert decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)["refresh_token"]
