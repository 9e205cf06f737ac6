"""The provider contract, run against every provider (Google, Microsoft, ICS) where the operation applies.

The real client libraries (google-api-python-client, msal + requests, requests + icalendar) talk HTTP to the
fake servers on loopback.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from calendars_harness import ZONE, GoogleHarness, IcsHarness, MicrosoftHarness

from calendars.errors import GrantRevoked, ProviderUnavailable, ReadOnlyCalendar
from calendars.models import BusyInterval, Calendar
from calendars.providers.base import EventDraft
from calendars.services.connections import provider_for
from calendars.services.sync import calendar_sync

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=60))


def at(days: int, hour: int, minutes: int = 0) -> dt.datetime:
    """A local time in the rep's zone (America/New_York), as an aware datetime."""
    day = (NOW + dt.timedelta(days=days)).astimezone(ZONE).date()
    return dt.datetime.combine(day, dt.time(hour, minutes), tzinfo=ZONE)


@pytest.fixture(params=["google", "microsoft", "ics"])
def harness(request, make_rep):
    rep = make_rep(timezone="America/New_York")
    if request.param == "google":
        conn = request.getfixturevalue("google_connection")(rep)
        return GoogleHarness(request.getfixturevalue("fake_google"), conn)
    if request.param == "microsoft":
        conn = request.getfixturevalue("ms_connection")(rep)
        return MicrosoftHarness(request.getfixturevalue("fake_ms"), conn)
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
    fake_ics = request.getfixturevalue("fake_ics")
    url = fake_ics.publish(empty)
    from calendars.services.connections import ics_connect

    conn = ics_connect(rep=rep, url=url)
    return IcsHarness(fake_ics, conn, url)


@pytest.fixture(params=["google", "microsoft"])
def writable(request, make_rep):
    rep = make_rep(timezone="Europe/Berlin")
    if request.param == "google":
        conn = request.getfixturevalue("google_connection")(rep)
        return GoogleHarness(request.getfixturevalue("fake_google"), conn)
    conn = request.getfixturevalue("ms_connection")(rep)
    return MicrosoftHarness(request.getfixturevalue("fake_ms"), conn)


def spans(result) -> set[tuple[dt.datetime, dt.datetime]]:
    return {(e.start, e.end) for e in result.upserts}


def utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def test_list_calendars_has_the_primary_calendar(harness):
    calendars = harness.provider().list_calendars()
    primary = [c for c in calendars if c.is_primary]
    assert len(primary) == 1
    assert primary[0].external_id == harness.calendar_id
    assert primary[0].can_write is harness.writable


def test_full_sync_returns_opaque_events_only(harness):
    harness.add_busy(at(1, 9), at(1, 10))
    harness.add_busy(at(2, 14), at(2, 15, 30))
    harness.add_free(at(3, 9), at(3, 12))
    harness.add_declined(at(4, 9), at(4, 10))
    result = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    assert result.full
    assert spans(result) == {(utc(at(1, 9)), utc(at(1, 10))), (utc(at(2, 14)), utc(at(2, 15, 30)))}
    assert all(e.start.tzinfo == dt.UTC for e in result.upserts)


def test_all_day_events_cover_local_days_with_exclusive_end(harness):
    first = (NOW + dt.timedelta(days=5)).astimezone(ZONE).date()
    harness.add_all_day(first, first + dt.timedelta(days=2))
    result = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=ZONE)
    end = dt.datetime.combine(first + dt.timedelta(days=2), dt.time(0), tzinfo=ZONE)
    assert spans(result) == {(utc(start), utc(end))}


def test_incremental_sync_reports_additions_moves_and_deletions(harness):
    keep = harness.add_busy(at(1, 9), at(1, 10))
    gone = harness.add_busy(at(1, 11), at(1, 12))
    moved = harness.add_busy(at(1, 13), at(1, 14))
    provider = harness.provider()
    first = provider.sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    assert len(first.upserts) == 3 and first.next_state

    harness.remove(gone)
    harness.move(moved, at(2, 16), at(2, 17))
    harness.add_busy(at(3, 8), at(3, 9))
    second = harness.provider().sync(harness.calendar_id, first.next_state, window=WINDOW, zone=ZONE)
    if second.full:  # ICS: the whole feed again
        assert spans(second) == {
            (utc(at(1, 9)), utc(at(1, 10))),
            (utc(at(2, 16)), utc(at(2, 17))),
            (utc(at(3, 8)), utc(at(3, 9))),
        }
    else:
        assert spans(second) == {(utc(at(2, 16)), utc(at(2, 17))), (utc(at(3, 8)), utc(at(3, 9)))}
        assert gone in second.deletions
        assert keep not in second.deletions and keep not in {e.external_id for e in second.upserts}


def test_an_event_turning_free_is_reported_as_not_busy(writable):
    harness = writable  # ICS polls return the full set every time: covered by the full-sync test
    event = harness.add_busy(at(1, 9), at(1, 10))
    first = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    if harness.name == "google":
        harness.server.put_event(
            harness.calendar_id, start=at(1, 9), end=at(1, 10), event_id=event, transparency="transparent"
        )
    else:
        harness.server.put_event(
            harness.calendar_id, start=at(1, 9), end=at(1, 10), event_id=event, show_as="free"
        )
    second = harness.provider().sync(harness.calendar_id, first.next_state, window=WINDOW, zone=ZONE)
    assert event in second.deletions and not second.upserts


def test_an_expired_sync_state_falls_back_to_a_full_sync(harness):
    harness.add_busy(at(1, 9), at(1, 10))
    first = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    harness.invalidate_state()
    harness.add_busy(at(2, 9), at(2, 10))
    second = harness.provider().sync(harness.calendar_id, first.next_state, window=WINDOW, zone=ZONE)
    assert second.full
    assert spans(second) == {(utc(at(1, 9)), utc(at(1, 10))), (utc(at(2, 9)), utc(at(2, 10)))}


def test_paging_is_followed_to_the_end(writable):
    harness = writable  # an ICS feed is one document
    harness.set_page_size(3)
    for day in range(1, 11):
        harness.add_busy(at(day, 9), at(day, 10))
    result = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    assert len(result.upserts) == 10 and result.next_state
    assert len(harness.list_requests()) == 4  # 3 + 3 + 3 + 1
    harness.add_busy(at(11, 9), at(11, 10))
    again = harness.provider().sync(harness.calendar_id, result.next_state, window=WINDOW, zone=ZONE)
    assert not again.full and len(again.upserts) == 1


def test_free_busy_for_one_window(harness):
    harness.add_busy(at(1, 9), at(1, 10))
    harness.add_busy(at(1, 15), at(1, 16))
    harness.add_free(at(1, 11), at(1, 12))
    busy = harness.provider().busy_in([harness.calendar_id], utc(at(1, 8)), utc(at(1, 13)))
    assert [(utc(s), utc(e)) for s, e in busy] == [(utc(at(1, 9)), utc(at(1, 10)))]


def test_revoked_access_is_reported_as_grant_revoked(harness):
    if harness.name == "ics":
        harness.revoke()
        with pytest.raises(ProviderUnavailable, match="404"):
            harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
        return
    harness.revoke()
    with pytest.raises(GrantRevoked):
        harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)


def test_a_slow_provider_times_out_as_unavailable(harness):
    harness.slow(3.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        harness.provider(timeout=0.5, retries=0).sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    assert time.monotonic() - started < 2.5


def test_throttling_is_retried_after_the_pause_asked_for(writable):
    harness = writable
    harness.add_busy(at(1, 9), at(1, 10))
    harness.throttle_once("0.3")
    started = time.monotonic()
    result = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    assert len(result.upserts) == 1
    assert len(harness.list_requests()) == 2
    if harness.name == "microsoft":  # Graph's Retry-After is honoured (Google's client backs off itself)
        assert time.monotonic() - started >= 0.3


def test_ics_is_read_only(make_rep, ics_connection):
    from calendars.services.connections import provider_for

    conn = ics_connection(
        make_rep(), b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
    )
    provider = provider_for(conn)
    draft = EventDraft(
        key="k", title="t", description="", start=NOW, end=NOW + dt.timedelta(hours=1), timezone="UTC"
    )
    for call in (
        lambda: provider.create_event("feed", draft),
        lambda: provider.update_event("feed", "x", draft),
        lambda: provider.cancel_event("feed", "x"),
        lambda: provider.subscribe("feed", address="https://x", secret="s", ttl=dt.timedelta(hours=1)),
    ):
        with pytest.raises(ReadOnlyCalendar):
            call()


def _draft(key="b1r1g0", *, start=None, video=True, attendees=(("Pat Prospect", "pat@prospect.example"),)):
    start = start or NOW + dt.timedelta(days=2)
    return EventDraft(
        key=key,
        title="Intro call: Pat Prospect",
        description="Booked through Baton",
        start=start,
        end=start + dt.timedelta(minutes=30),
        timezone="Europe/Berlin",
        attendees=attendees,
        video=video,
        notify=True,
        booking_id=1,
    )


def _online(h):
    return "hangoutsMeet" if h.name == "google" else "teamsForBusiness"


def test_create_event_with_video_link_and_invitation(writable):
    written = writable.provider().create_event(
        writable.calendar_id, _draft(), online_provider=_online(writable)
    )
    assert written.external_id
    assert written.join_url.startswith(("https://meet.google.com/", "https://teams.microsoft.com/"))
    assert len(writable.events()) == 1
    assert writable.invitations() == [
        {"action": "created", "event_id": written.external_id, "to": ["pat@prospect.example"]}
    ]


def test_a_retried_create_does_not_duplicate_the_event(writable):
    first = writable.provider().create_event(
        writable.calendar_id, _draft(), online_provider=_online(writable)
    )
    again = writable.provider().create_event(
        writable.calendar_id, _draft(), online_provider=_online(writable)
    )
    assert again.external_id == first.external_id
    assert len(writable.events()) == 1
    assert len(writable.invitations()) == 1


def test_update_and_cancel_event(writable):
    provider = writable.provider()
    written = provider.create_event(writable.calendar_id, _draft(), online_provider=_online(writable))
    later = NOW + dt.timedelta(days=3)
    provider.update_event(writable.calendar_id, written.external_id, _draft(start=later))
    (event,) = writable.events()
    start = event["start"]["dateTime"]
    assert (
        dt.datetime.fromisoformat(start.replace("Z", "+00:00").split(".")[0].replace("+00:00", "")).replace(
            tzinfo=dt.UTC
        )
        == later
    )
    provider.cancel_event(writable.calendar_id, written.external_id)
    assert writable.events() == []
    provider.cancel_event(writable.calendar_id, written.external_id)  # cancelling twice is fine
    assert [i["action"] for i in writable.invitations()] == ["created", "updated", "cancelled"]


def test_events_written_by_baton_do_not_come_back_as_busy(writable):
    writable.provider().create_event(writable.calendar_id, _draft(), online_provider=_online(writable))
    writable.add_busy(NOW + dt.timedelta(days=4), NOW + dt.timedelta(days=4, hours=1))
    result = writable.provider().sync(writable.calendar_id, "", window=WINDOW, zone=ZONE)
    assert len(result.upserts) == 1


def test_subscribe_renew_unsubscribe(writable, settings, live_server):
    settings.CALENDAR_WEBHOOK_BASE_URL = live_server.url  # Graph checks the endpoint with a validationToken
    provider = writable.provider()
    address = f"{live_server.url}/calendars/webhooks/{writable.name}"
    watch = provider.subscribe(
        writable.calendar_id, address=address, secret="s3cret", ttl=dt.timedelta(days=2)
    )
    assert watch.expiration > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert list(writable.subscriptions()) == [watch.channel_id]
    renewed = provider.renew(
        writable.calendar_id, watch, address=address, secret="n3w", ttl=dt.timedelta(days=2)
    )
    # Graph extends the subscription; Google opens a new channel, and the old one stays open until the
    # caller (``watch_ensure``) has recorded the new one and stops it
    assert sorted(writable.subscriptions()) == sorted({watch.channel_id, renewed.channel_id})
    if renewed.channel_id != watch.channel_id:
        provider.unsubscribe(watch)
    assert list(writable.subscriptions()) == [renewed.channel_id]
    provider.unsubscribe(renewed)
    assert writable.subscriptions() == {}


def test_google_client_uses_the_bundled_discovery_document(make_rep, google_connection, monkeypatch):
    """``build(..., static_discovery=True)``: no discovery document is fetched over the network."""
    import googleapiclient.discovery

    from calendars.services.connections import provider_for

    real = googleapiclient.discovery._retrieve_discovery_doc
    fetched = []

    class NoNetwork:
        def request(self, uri, *args, **kwargs):
            fetched.append(uri)
            raise AssertionError(f"the discovery document was fetched from {uri}")

    def offline(url, http, *args, **kwargs):
        return real(url, NoNetwork(), *args, **kwargs)

    monkeypatch.setattr(googleapiclient.discovery, "_retrieve_discovery_doc", offline)
    conn = google_connection(make_rep())
    assert [c.is_primary for c in provider_for(conn).list_calendars()] == [True]
    assert fetched == []


def test_an_event_ending_past_the_last_utc_instant_stays_busy(make_rep, google_connection, fake_google):
    # 23:00 on 9999-12-31 at UTC-08:00 is in the year 10000 in UTC: an OverflowError out of the sync
    # before (the calendar went stale with no error shown); now busy up to the last instant
    harness = GoogleHarness(fake_google, google_connection(make_rep(timezone="America/New_York")))
    far = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    harness.add_busy(at(1, 9), far)
    result = harness.provider().sync(harness.calendar_id, "", window=WINDOW, zone=ZONE)
    last = dt.datetime.max.replace(tzinfo=dt.UTC)
    assert spans(result) == {(utc(at(1, 9)), last)}
    assert calendar_sync(calendar_id=harness.calendar.pk) == "full"  # stored, on both databases
    assert list(BusyInterval.objects.values_list("start", "end")) == [(utc(at(1, 9)), last)]


def test_free_busy_reads_all_day_events_in_the_reps_zone(harness):
    """The live check before a booking asks for the free/busy of the booking's window: a day off (an
    all-day event) covers the rep's own day there too, as in the sync. Microsoft's live check read it in
    UTC: a New York rep's day off blocked 19:00–24:00 the evening before and left 19:00–24:00 of the day
    off free."""
    first = (NOW + dt.timedelta(days=5)).astimezone(ZONE).date()
    harness.add_all_day(first, first + dt.timedelta(days=1))
    eve = dt.datetime.combine(first - dt.timedelta(days=1), dt.time(21), tzinfo=ZONE)
    late = dt.datetime.combine(first, dt.time(21), tzinfo=ZONE)
    provider = harness.provider()
    assert provider.busy_in([harness.calendar_id], utc(eve), utc(eve + dt.timedelta(minutes=30))) == []
    (busy,) = provider.busy_in([harness.calendar_id], utc(late), utc(late + dt.timedelta(minutes=30)))
    assert utc(busy[0]) <= utc(late) and utc(busy[1]) >= utc(late + dt.timedelta(minutes=30))


def test_google_reads_all_day_dates_in_the_calendars_own_zone(make_rep, google_connection, fake_google):
    """An all-day event is a day of the calendar's zone (events.list's ``timeZone``), as Google's free/busy
    reads it for the live check: the sync and the live check agree when a rep's calendar is set to another
    zone than the rep (before, the sync read the dates in the rep's zone and the live check in the
    calendar's)."""
    rep = make_rep(timezone="America/New_York")
    conn = google_connection(rep, time_zone="Europe/London")
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    day = (NOW + dt.timedelta(days=5)).date()
    fake_google.put_event(cal.external_id, start=day, end=day + dt.timedelta(days=1))
    result = provider_for(conn).sync(cal.external_id, "", window=WINDOW, zone=ZONE)
    london = ZoneInfo("Europe/London")
    first = dt.datetime.combine(day, dt.time(0), tzinfo=london)
    assert spans(result) == {(utc(first), utc(first + dt.timedelta(days=1)))}
    busy = provider_for(conn).busy_in([cal.external_id], utc(first), utc(first + dt.timedelta(hours=1)))
    assert [(utc(s), utc(e)) for s, e in busy] == [(utc(first), utc(first + dt.timedelta(hours=1)))]
