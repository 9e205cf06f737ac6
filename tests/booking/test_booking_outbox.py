"""The outbox: written in the booking transaction, delivered once, survives a broker outage; iCalendar."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django_celery_beat.models import PeriodicTask
from icalendar import Calendar

from booking import outbox
from booking.models import Booking, IdempotencyKey, OutboxMessage
from booking.publisher import publisher
from booking.services import idempotency
from config.celery import app as celery_app
from tests.booking.booking_factories import NOW, body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def post(api, url, data):
    return api.post(url, data, format="json")


def ics_of(message) -> Calendar:
    parts = [content for content, mimetype in message.alternatives if mimetype.startswith("text/calendar")]
    assert len(parts) == 1
    attached = [a for a in message.attachments if a[0] == "invite.ics"]
    assert attached and attached[0][2].startswith("application/ics")
    return Calendar.from_ical(parts[0])


@pytest.fixture
def broker_down(monkeypatch):
    """Celery with a real (unreachable) broker instead of eager execution."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    celery_app._pool = None
    celery_app.amqp._producer_pool = None  # a pool cached by earlier tests would hide the outage
    yield
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_broker_down_booking_succeeds_and_sweep_delivers_once(
    api, meeting_type, rep, broker_down, clock, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, URL, body())
    assert response.status_code == 201
    assert publisher.flush(10)  # the background publisher met the outage, not the request
    assert "could not enqueue outbox messages" in caplog.text
    rows = OutboxMessage.objects.filter(status="pending")
    assert {r.handler for r in rows} >= {
        "email.prospect",
        "email.host",
        "calendars.outbox.write_booking_to_calendars",
    }
    assert mail.outbox == []
    assert outbox.sweep() == {}  # still inside the grace period: the Celery task would deliver first
    clock.shift(dt.timedelta(minutes=2))
    result = outbox.sweep()
    assert result == {"delivered": 3}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["pat@example.org", rep.email])
    assert outbox.sweep() == {}  # delivered rows are never sent again
    assert len(mail.outbox) == 2
    prospect = next(m for m in mail.outbox if m.to == ["pat@example.org"])
    assert response.json()["manage_url"] in prospect.body
    assert OutboxMessage.objects.filter(sealed="").count() == 3  # the manage link is wiped once delivered
    cal = ics_of(prospect)
    event = cal.walk("VEVENT")[0]
    assert cal["METHOD"] == "REQUEST"
    assert str(event["UID"]) == Booking.objects.get(pk=response.json()["id"]).ical_uid
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].dt == dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    assert "DTSTAMP" in event and str(event["ORGANIZER"]) == f"mailto:{rep.email}"
    attendee = event["ATTENDEE"] if not isinstance(event["ATTENDEE"], list) else event["ATTENDEE"][0]
    assert str(attendee) == "mailto:pat@example.org" and attendee.params["RSVP"] == "TRUE"


def test_eager_delivery_after_commit_then_reschedule_and_cancel(
    api, meeting_type, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        token = post(api, URL, body()).json()["manage_token"]
    assert len(mail.outbox) == 2
    with django_capture_on_commit_callbacks(execute=True):
        post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T11:00:00+01:00"})
    moved = [m for m in mail.outbox[2:] if m.to == ["pat@example.org"]][0]
    event = ics_of(moved).walk("VEVENT")[0]
    assert (ics_of(moved)["METHOD"], int(event["SEQUENCE"])) == ("REQUEST", 1)
    assert event["DTSTART"].dt == dt.datetime(2026, 3, 3, 10, tzinfo=dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        post(api, f"/api/v1/bookings/{token}/cancel", {"reason": "sorry"})
    cancels = [m for m in mail.outbox[4:]]
    assert len(cancels) == 2
    for message in cancels:
        cal = ics_of(message)
        assert cal["METHOD"] == "CANCEL" and int(cal.walk("VEVENT")[0]["SEQUENCE"]) == 2
    uids = {str(ics_of(m).walk("VEVENT")[0]["UID"]) for m in mail.outbox}  # one event, updated and cancelled
    assert uids == {Booking.objects.get().ical_uid}
    assert OutboxMessage.objects.exclude(status="delivered").count() == 0


def test_failing_handler_retries_with_backoff_then_gives_up(meeting_type, api, settings, clock):
    settings.BOOKING_OUTBOX_MAX_ATTEMPTS = 3
    calls = []

    def flaky(payload):
        calls.append(payload["booking_id"])
        raise RuntimeError("CRM down")

    outbox.register_handler("booking.confirmed", flaky, name="test.flaky")
    try:
        post(api, URL, body())
        row = OutboxMessage.objects.get(handler="test.flaky")
        assert outbox.deliver(message_id=row.pk) == "retry"
        row.refresh_from_db()
        assert row.attempts == 1 and "CRM down" in row.last_error
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=30)
        assert outbox.deliver(message_id=row.pk) == "retry"
        row.refresh_from_db()
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=60)
        assert outbox.deliver(message_id=row.pk) == "dead"
        assert outbox.deliver(message_id=row.pk) == "skipped"
        assert len(calls) == 3
    finally:
        outbox.HANDLERS.pop("test.flaky")
        outbox.REGISTRY["booking.confirmed"].pop("test.flaky")


def test_one_task_per_event_and_only_the_failed_rows_are_retried(
    meeting_type, api, monkeypatch, django_capture_on_commit_callbacks
):
    from booking.tasks import deliver_outbox_messages

    published, retried = [], []

    def flaky(payload):
        raise RuntimeError("CRM down")

    class Retry(Exception):
        pass

    def retry(*, args, countdown):
        retried.append((args, countdown))
        return Retry()

    outbox.register_handler("booking.confirmed", flaky, name="test.flaky")
    try:
        monkeypatch.setattr(deliver_outbox_messages, "apply_async", lambda args, **kw: published.append(args))
        with django_capture_on_commit_callbacks(execute=True):
            booking_id = post(api, URL, body()).json()["id"]
        rows = {r.handler: r.pk for r in OutboxMessage.objects.filter(booking_id=booking_id)}
        assert len(rows) == 4 and published == [(sorted(rows.values()),)]  # one publish for the event
        monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
        monkeypatch.setattr(deliver_outbox_messages, "retry", retry)
        with pytest.raises(Retry):
            deliver_outbox_messages(published[0][0])
        assert retried == [(([rows["test.flaky"]],), 30)]  # only the failed row, first backoff step
        statuses = dict(OutboxMessage.objects.filter(booking_id=booking_id).values_list("handler", "status"))
        assert statuses.pop("test.flaky") == "pending"
        assert set(statuses.values()) == {"delivered"} and len(mail.outbox) == 2
        delivered = sorted(rows[handler] for handler in statuses)
        assert deliver_outbox_messages(delivered) == dict.fromkeys(delivered, "skipped")  # never sent again
    finally:
        outbox.HANDLERS.pop("test.flaky")
        outbox.REGISTRY["booking.confirmed"].pop("test.flaky")


def test_a_claimed_row_is_not_delivered_twice(meeting_type, api):
    post(api, URL, body())
    row = OutboxMessage.objects.filter(handler="email.prospect").first()
    claimed = outbox._claim(OutboxMessage.objects.filter(pk=row.pk), now=NOW, limit=1)
    assert len(claimed) == 1
    assert outbox.deliver(message_id=row.pk) == "skipped"  # someone else holds the lease
    assert outbox._run(claimed[0]) == "delivered"
    assert outbox.deliver(message_id=row.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_registry_creates_one_row_per_handler_and_host(meeting_type, api):
    from routing.models import PoolMember
    from tests.booking.booking_factories import make_rep

    pool = meeting_type.pool
    pool.strategy = "group"
    pool.save()
    pool.members.update(role="ae")
    PoolMember.objects.create(pool=pool, rep=make_rep("Sam"), role="se")
    booking_id = post(api, URL, body()).json()["id"]
    rows = OutboxMessage.objects.filter(booking_id=booking_id)
    by_handler = {}
    for row in rows:
        by_handler.setdefault(row.handler, []).append(row)
    assert len(by_handler["email.host"]) == 2 and len(by_handler["email.prospect"]) == 1
    assert len(by_handler["calendars.outbox.write_booking_to_calendars"]) == 1
    assert all(r.event == "booking.confirmed" and r.payload["booking_id"] == booking_id for r in rows)


def test_periodic_tasks_and_idempotency_purge(meeting_type, api, clock):
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"booking.outbox_sweep", "booking.purge_idempotency_keys"} <= names
    api.post(URL, body(), format="json", headers={"Idempotency-Key": "purge-me"})
    assert idempotency.purge_expired(now=NOW + dt.timedelta(hours=23)) == 0
    assert idempotency.purge_expired(now=NOW + dt.timedelta(hours=24)) == 1
    assert not IdempotencyKey.objects.exists() and Booking.objects.count() == 1


def test_finished_outbox_messages_are_purged_after_the_retention_period(meeting_type, api, clock, settings):
    """Delivered and dead messages hold the prospect's name, e-mail and answers; they were kept for ever.
    The daily ``booking.purge_outbox`` deletes them after ``BOOKING_OUTBOX_RETENTION_DAYS``; a message still
    pending is never purged, whatever its age."""
    assert "booking.purge_outbox" in set(PeriodicTask.objects.values_list("task", flat=True))
    settings.BOOKING_OUTBOX_RETENTION_DAYS = 30
    booking_id = post(api, URL, body()).json()["id"]
    rows = list(OutboxMessage.objects.filter(booking_id=booking_id).order_by("pk"))
    assert len(rows) >= 3
    Status = OutboxMessage.Status
    OutboxMessage.objects.filter(pk=rows[0].pk).update(status=Status.DELIVERED, delivered_at=NOW)
    OutboxMessage.objects.filter(pk=rows[1].pk).update(status=OutboxMessage.Status.DEAD)
    OutboxMessage.objects.filter(pk=rows[2].pk).update(status=OutboxMessage.Status.PENDING)
    assert outbox.purge_finished(now=NOW + dt.timedelta(days=29)) == 0
    assert outbox.purge_finished(now=NOW + dt.timedelta(days=31)) == 2
    assert set(OutboxMessage.objects.filter(booking_id=booking_id).values_list("pk", flat=True)) == {
        r.pk for r in rows[2:]
    }
