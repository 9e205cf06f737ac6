"""End to end: a busy event appearing in a rep's (fake) Google calendar removes the slot from
``GET /api/v1/meeting-types/{slug}/slots`` after the push-triggered sync."""

from __future__ import annotations

import datetime as dt

import pytest

from booking.models import MeetingType
from calendars.models import Calendar
from calendars.services import sync as sync_service
from calendars.services.sync import calendar_sync
from calendars.services.watches import watch_ensure
from routing.models import Pool, PoolMember

pytestmark = pytest.mark.django_db(transaction=True)


def _starts(body: dict) -> set[dt.datetime]:
    """Slot start instants of a ``/slots`` answer: ``{"slots": [{"start": iso, "end": iso}, …]}``."""
    return {dt.datetime.fromisoformat(slot["start"]).astimezone(dt.UTC) for slot in body["slots"]}


def test_a_new_busy_event_removes_the_slot(
    client, make_rep, google_connection, fake_google, settings, live_server, monkeypatch
):
    from calendars.models import WorkingHours

    settings.CALENDAR_PUSH_ENABLED = True
    settings.CALENDAR_WEBHOOK_BASE_URL = live_server.url
    queued = []
    monkeypatch.setattr(sync_service, "_enqueue", queued.append)

    rep = make_rep("Dana", timezone="UTC")
    for weekday in range(7):
        WorkingHours.objects.create(rep=rep, weekday=weekday, start=dt.time(0), end=dt.time(0))
    pool = Pool.objects.create(name="Inbound", slug="inbound-e2e", strategy="round_robin")
    PoolMember.objects.create(pool=pool, rep=rep)
    MeetingType.objects.create(
        slug="intro-e2e",
        title="Intro",
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=0,
        horizon_days=7,
        pool=pool,
    )
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    assert calendar_sync(calendar_id=cal.pk) == "full"
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"

    target = dt.datetime.now(dt.UTC).replace(hour=15, minute=0, second=0, microsecond=0) + dt.timedelta(
        days=2
    )
    fake_google.put_event(
        cal.external_id, start=target, end=target + dt.timedelta(minutes=30)
    )  # pushes to us
    assert [n["status"] for n in fake_google.notifications if n["state"] == "exists"] == [200]
    assert queued == [cal.pk]

    before = client.get("/api/v1/meeting-types/intro-e2e/slots")
    assert before.status_code == 200
    assert target in _starts(before.json())
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    after = client.get("/api/v1/meeting-types/intro-e2e/slots")
    assert after.status_code == 200
    offered = _starts(after.json())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # ignore slots that left the window meanwhile
    assert {t for t in _starts(before.json()) - offered if t > later} == {target}
    assert target not in offered
    assert target + dt.timedelta(minutes=30) in offered  # the slot right after the event is still there


@pytest.fixture
def bookable(make_rep, google_connection):
    """A rep with a synced Google calendar, whole-day working hours, in a round-robin pool."""
    from calendars.models import WorkingHours

    rep = make_rep("Dana", timezone="UTC")
    for weekday in range(7):
        WorkingHours.objects.create(rep=rep, weekday=weekday, start=dt.time(0), end=dt.time(0))
    pool = Pool.objects.create(name="Inbound", slug="inbound-api", strategy="round_robin")
    PoolMember.objects.create(pool=pool, rep=rep)
    MeetingType.objects.create(
        slug="intro-api",
        title="Intro",
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=0,
        horizon_days=7,
        pool=pool,
    )
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    assert calendar_sync(calendar_id=cal.pk) == "full"
    return rep, cal


def _book(client, start: dt.datetime):
    body = {
        "start": start.isoformat(),
        "name": "Pat Prospect",
        "email": "pat@prospect.example",
        "timezone": "Europe/Paris",
    }
    return client.post("/api/v1/meeting-types/intro-api/bookings", body, content_type="application/json")


def test_a_booking_made_through_the_api_lands_in_the_hosts_calendar(
    client, bookable, fake_google, mailoutbox
):
    rep, cal = bookable
    start = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    answer = _book(client, start)  # the outbox delivers after commit (tasks run in-process in tests)
    assert answer.status_code == 201, answer.content
    (event,) = [
        e for e in fake_google.calendar(cal.external_id).events.values() if e["status"] == "confirmed"
    ]
    assert event["start"]["dateTime"] == start.isoformat().replace("+00:00", "Z")
    assert event["hangoutLink"].startswith("https://meet.google.com/")
    assert fake_google.invitations == [
        {"action": "created", "event_id": event["id"], "to": ["pat@prospect.example"]}
    ]
    prospect_mail = [m for m in mailoutbox if m.to == ["pat@prospect.example"]]
    assert prospect_mail and all(m.attachments == [] for m in prospect_mail)  # Google invites, not an .ics
    from calendars.crypto import decrypt_secrets

    secrets = decrypt_secrets(type(cal.connection).objects.get(pk=cal.connection_id).secret_blob)
    slots = client.get("/api/v1/meeting-types/intro-api/slots")
    for body in (answer.content, slots.content, *(str(m.message()).encode() for m in mailoutbox)):
        for key in ("token", "refresh_token"):  # no credential in API responses or emails
            assert secrets[key].encode() not in body


def test_the_live_check_refuses_a_slot_the_calendar_just_filled(client, bookable, fake_google):
    rep, cal = bookable
    start = dt.datetime.now(dt.UTC).replace(hour=11, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    fake_google.deliver_push = False  # the sync has not seen it yet: only the live free/busy can tell
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(minutes=30))
    answer = _book(client, start)
    assert answer.status_code == 409 and answer.json()["code"] == "slot_unavailable"


def _hours_of(body: dict) -> set[int]:
    return {start.hour for start in _starts(body)}


def test_a_revoked_or_stale_calendar_withholds_only_its_rep_from_the_slot_page(
    client, make_rep, google_connection, fake_google, settings
):
    """Dana works around the clock, Sam only 00:00–12:00 UTC. When Dana's grant is revoked, or her calendar
    stops syncing for longer than the staleness bound, the afternoon slots (hers alone) disappear while
    Sam's mornings stay offered: one bad calendar never blocks the pool."""
    from calendars.models import WorkingHours

    dana, sam = make_rep("Dana", timezone="UTC"), make_rep("Sam", timezone="UTC")
    for weekday in range(7):
        WorkingHours.objects.create(rep=dana, weekday=weekday, start=dt.time(0), end=dt.time(0))
        WorkingHours.objects.create(rep=sam, weekday=weekday, start=dt.time(0), end=dt.time(12))
    pool = Pool.objects.create(name="Inbound", slug="inbound-withheld", strategy="round_robin")
    PoolMember.objects.create(pool=pool, rep=dana)
    PoolMember.objects.create(pool=pool, rep=sam)
    MeetingType.objects.create(
        slug="intro-withheld",
        title="Intro",
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=0,
        horizon_days=7,
        pool=pool,
    )
    dana_cal = Calendar.objects.get(connection=google_connection(dana), is_primary=True)
    sam_cal = Calendar.objects.get(connection=google_connection(sam), is_primary=True)
    assert calendar_sync(calendar_id=dana_cal.pk) == "full"
    assert calendar_sync(calendar_id=sam_cal.pk) == "full"
    url = "/api/v1/meeting-types/intro-withheld/slots"

    both = client.get(url)
    assert both.status_code == 200
    assert {h for h in _hours_of(both.json()) if h >= 12}  # Dana's afternoons are offered

    # stale: Dana's last successful sync is older than the bound → only her slots go
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=settings.CALENDAR_STALENESS_MINUTES + 5)
    Calendar.objects.filter(pk=dana_cal.pk).update(last_synced_at=old)
    stale = client.get(url)
    assert stale.status_code == 200
    assert _hours_of(stale.json()) and max(_hours_of(stale.json())) < 12
    assert calendar_sync(calendar_id=dana_cal.pk) == "incremental"
    assert {h for h in _hours_of(client.get(url).json()) if h >= 12}  # fresh again: offered again

    # revoked: the next sync meets invalid_grant → Dana disconnected and withheld; Sam still offered
    fake_google.revoke(dana.email)
    fake_google.expire_access_tokens()
    assert calendar_sync(calendar_id=dana_cal.pk) == "disconnected"
    revoked = client.get(url)
    assert revoked.status_code == 200
    hours = _hours_of(revoked.json())
    assert hours and max(hours) < 12
