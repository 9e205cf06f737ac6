"""The outbox's delivery under Celery: the soft time limit, the back-off between task retries and the sweep,
redirected webhooks, deleting and retrying messages in the admin, and the periodic tasks' loops (found by a
hunting helper; each test failed before its fix)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection as db_connection

from booking import outbox
from booking.models import OutboxMessage
from booking.tasks import deliver_outbox_messages
from config.celery import app as celery_app
from leads.models import Lead
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep


def make_rows(n: int, *, handler: str, event: str = "booking.confirmed", at=NOW) -> list[OutboxMessage]:
    """``n`` pending outbox rows (no booking: the handlers here do not read one), due at ``at``."""
    return [
        OutboxMessage.objects.create(
            event=event, handler=handler, payload={"n": i}, created_at=at, next_attempt_at=at
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_the_sweep_stops_at_the_celery_soft_time_limit(monkeypatch):
    """config/settings.py: "a task still running after 10 min is stopped (soft: an exception the task's error
    handling records)": a soft limit at 540 s, the hard kill at 600 s. ``_run`` catches the
    ``SoftTimeLimitExceeded`` raised inside a handler as if the handler had failed, and ``sweep`` (and
    ``deliver_many``) then go on calling the next handlers of the batch, so the hard limit SIGKILLs the worker
    in the middle of a later handler: an e-mail the SMTP server accepted is never marked delivered, and the
    sweep sends it again once the lease runs out (the prospect gets it twice); the rows never reached keep
    an attempt they never made. Once the soft limit is hit, no further handler may start."""
    calls = []

    def handler(payload):
        calls.append(payload["n"])
        if len(calls) == 1:
            raise SoftTimeLimitExceeded()
        return "sent"

    monkeypatch.setitem(outbox.HANDLERS, "test.slow", handler)
    make_rows(3, handler="test.slow")
    with contextlib.suppress(SoftTimeLimitExceeded):  # stopping by raising it on is fine
        outbox.sweep(now=NOW + dt.timedelta(minutes=1))
    assert calls == [0], f"handlers started after the soft time limit: {calls[1:]}"


@pytest.mark.django_db
def test_a_celery_retry_does_not_deliver_a_row_before_its_backoff(monkeypatch, clock):
    """A failed row waits ``backoff_seconds(attempts)`` (its ``next_attempt_at``) before the next attempt,
    so that ``BOOKING_OUTBOX_MAX_ATTEMPTS`` (12) spans hours of an outage (30 s … 1 h). Two schedules retry
    it: the task's own ``self.retry`` (countdown from the task's retry count) and the minute sweep (from the
    row's ``next_attempt_at``). ``deliver_many`` claims a row without looking at ``next_attempt_at``, so
    when the sweep has made an attempt meanwhile (a busy queue held the task's retry a few seconds), the
    task's retry runs the handler again at once: the row burns two attempts per back-off step and dies
    hours early (an SMTP outage then loses confirmation e-mails for good). A row already attempted must not
    be attempted again before its ``next_attempt_at``."""
    calls = []

    def smtp_down(payload):
        calls.append(payload["n"])
        raise ConnectionRefusedError("SMTP down")

    monkeypatch.setitem(outbox.HANDLERS, "test.smtp", smtp_down)
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    (row,) = make_rows(1, handler="test.smtp")
    # the task's first delivery fails: attempt 1, next attempt 30 s later
    assert outbox.deliver_many(message_ids=[row.pk]) == {row.pk: "retry"}
    # the sweep gets there first (the task's retry is late in a busy queue): attempt 2, next in 60 s
    clock.shift(dt.timedelta(seconds=31))
    assert outbox.sweep() == {"retry": 1}
    row.refresh_from_db()
    assert row.attempts == 2
    due = row.next_attempt_at
    # the task's retry (countdown 30 s) arrives 4 s later, well before the row's next attempt is due
    clock.shift(dt.timedelta(seconds=4))
    deliver_outbox_messages.apply(args=([row.pk],))
    row.refresh_from_db()
    assert row.attempts == 2 and len(calls) == 2, (
        f"attempted again {len(calls) - 2} time(s) before {due} (attempts now {row.attempts})"
    )


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/hook":
            self.send_response(301)
            self.send_header("Location", "/hook/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        type(self).received.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer


@pytest.fixture
def nurture_endpoint(settings):
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.BATON_NURTURE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield _Hook.received
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_a_redirected_nurture_webhook_does_not_lose_the_lead(nurture_endpoint):
    """A disqualified lead is handed to ``BATON_NURTURE_WEBHOOK_URL`` by the outbox, which must "raise (so
    the outbox retries) on a failed delivery". An endpoint that answers a redirect (a moved URL, a missing
    trailing slash, http → https) makes ``requests`` follow it as a GET without the body (301/302), the GET
    answers 200, and the message is marked delivered: the lead never reached the nurture system and nobody
    is told. Either the lead is POSTed where the redirect points or the delivery fails (and is retried,
    with the reason in ``last_error``)."""
    lead = Lead.objects.create(  # a lead that exists: one deleted since is not sent at all
        meeting_type=make_meeting_type(make_pool("round_robin", [make_rep("Ana")]), slug="nurtured"),
        email="lead@example.org",
        name="Lee",
        domain="example.org",
        timezone="UTC",
        outcome=Lead.Outcome.DISQUALIFIED,
    )
    payload = {"event": "lead.disqualified", "lead_id": lead.pk, "email": "lead@example.org", "name": "Lee"}
    row = OutboxMessage.objects.create(
        event="lead.disqualified", handler="leads.nurture_webhook", payload=payload, next_attempt_at=NOW
    )
    result = outbox.deliver(message_id=row.pk)
    row.refresh_from_db()
    posted = [json.loads(body) for method, _, body in nurture_endpoint if method == "POST" and body]
    assert result != "delivered" or posted == [payload], (
        f"marked {result} ({row.result!r}); the endpoint got {[(m, p) for m, p, _ in nurture_endpoint]}"
    )


@pytest.mark.django_db
def test_the_outbox_admin_does_not_delete_a_message_not_yet_delivered(admin_client):
    """docs/config.md: outbox messages are read-only in the admin. The outbox admin still offers Delete
    (and "Delete selected") for every row, pending ones included: one click drops a prospect's cancellation
    e-mail or a host's calendar write that has not gone out yet, silently (no retry, no dead row to see),
    and lifts the guard that refuses to delete a booking whose changes are still being delivered
    (``booking_changes_pending``). A message not delivered yet must not be deletable there."""
    (row,) = make_rows(1, handler="email.prospect")
    url = f"/admin/booking/outboxmessage/{row.pk}/delete/"
    response = admin_client.post(url, {"post": "yes"})
    assert OutboxMessage.objects.filter(pk=row.pk).exists(), f"deleted (HTTP {response.status_code})"


# THE FIXES' OTHER EDGES ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_at_the_soft_time_limit_the_rows_not_reached_are_handed_back(monkeypatch):
    """The row whose handler was stopped counts a failed attempt (retried after its back-off); the rows the
    batch never reached lose the lease and the attempt ``_claim`` counted, and are due as before."""

    def handler(payload):
        if payload["n"] == 1:
            raise SoftTimeLimitExceeded()
        return "sent"

    monkeypatch.setitem(outbox.HANDLERS, "test.slow", handler)
    rows = make_rows(4, handler="test.slow")
    with pytest.raises(SoftTimeLimitExceeded):
        outbox.deliver_many(message_ids=[row.pk for row in rows], now=NOW)
    got = {r.payload["n"]: r for r in OutboxMessage.objects.all()}
    assert (got[0].status, got[0].attempts) == ("delivered", 1)
    assert (got[1].status, got[1].attempts, got[1].claimed_until) == ("pending", 1, None)
    assert "SoftTimeLimitExceeded" in got[1].last_error and got[1].next_attempt_at > NOW
    for n in (2, 3):
        assert (got[n].status, got[n].attempts, got[n].claimed_until, got[n].next_attempt_at) == (
            "pending",
            0,
            None,
            NOW,
        )
    assert outbox.sweep(now=NOW) == {"delivered": 2}  # the two handed back; the stopped one waits


@pytest.mark.django_db
def test_the_task_delivers_a_fresh_row_at_once_and_a_retried_row_once_due(monkeypatch):
    """``due_only`` leaves a fresh row (never attempted, inside the sweep's grace) to the task as before, and
    a failed row to its ``next_attempt_at``: from then on the task's retry delivers it."""
    calls = []
    monkeypatch.setitem(outbox.HANDLERS, "test.ok", lambda payload: calls.append(payload["n"]))
    fresh, failed = make_rows(2, handler="test.ok", at=NOW + dt.timedelta(minutes=1))
    OutboxMessage.objects.filter(pk=failed.pk).update(attempts=1)
    ids = [fresh.pk, failed.pk]
    assert outbox.deliver_many(message_ids=ids, now=NOW, due_only=True) == {
        fresh.pk: "delivered",
        failed.pk: "skipped",
    }
    due = failed.next_attempt_at
    assert outbox.deliver(message_id=failed.pk, now=due, due_only=True) == "delivered"
    assert calls == [0, 1]


@pytest.mark.django_db
def test_a_nurture_webhook_redirect_is_retried_with_what_changed_in_the_error(nurture_endpoint):
    """Not followed: the row stays pending (retried), ``last_error`` says what the redirect changes (a
    trailing slash), not the webhook's path (a catch hook's secret)."""
    row = OutboxMessage.objects.create(
        event="lead.disqualified", handler="leads.nurture_webhook", payload={"id": 7}, next_attempt_at=NOW
    )
    assert outbox.deliver(message_id=row.pk) == "retry"
    row.refresh_from_db()
    error = row.last_error
    assert "301" in error and "trailing slash" in error and "/hook" not in error and nurture_endpoint == []


@pytest.mark.django_db
def test_delete_selected_in_the_outbox_admin_keeps_pending_messages(admin_client):
    """Bulk "Delete selected" refuses while a pending message is among those selected (it is listed as what
    stops the deletion); delivered and dead ones may still be deleted, one by one or together."""
    pending, delivered, dead = make_rows(3, handler="email.prospect")
    OutboxMessage.objects.filter(pk=delivered.pk).update(status="delivered")
    OutboxMessage.objects.filter(pk=dead.pk).update(status="dead")
    url = "/admin/booking/outboxmessage/"
    every = {"action": "delete_selected", "_selected_action": [pending.pk, delivered.pk, dead.pk]}
    page = admin_client.post(url, every)
    assert "not delivered yet" in page.content.decode()
    admin_client.post(url, {**every, "post": "yes"})
    assert OutboxMessage.objects.count() == 3
    assert admin_client.get(f"{url}{pending.pk}/delete/").status_code == 403
    admin_client.post(url, {"action": "delete_selected", "_selected_action": [delivered.pk], "post": "yes"})
    admin_client.post(f"{url}{dead.pk}/delete/", {"post": "yes"})
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [pending.pk]


@pytest.mark.django_db
def test_the_outbox_admin_retries_dead_messages_only(admin_client, monkeypatch, clock):
    """ "Retry" puts dead messages back to pending for a new round of attempts (due at once, noted in
    ``last_error`` with what they died of); a selected row that is not dead — one already put back and
    claimed by a sweep — keeps its lease and attempts (one UPDATE of the rows still dead)."""
    delivered = []
    monkeypatch.setitem(outbox.HANDLERS, "test.ok", lambda payload: delivered.append(payload["n"]))
    dead, claimed = make_rows(2, handler="test.ok")
    OutboxMessage.objects.filter(pk=dead.pk).update(status="dead", attempts=12, last_error="SMTPError: down")
    lease = NOW + dt.timedelta(hours=1)
    OutboxMessage.objects.filter(pk=claimed.pk).update(attempts=1, claimed_until=lease)
    response = admin_client.post(
        "/admin/booking/outboxmessage/", {"action": "retry", "_selected_action": [dead.pk, claimed.pk]}
    )
    assert response.status_code == 302
    dead.refresh_from_db()
    claimed.refresh_from_db()
    assert (dead.status, dead.attempts, dead.claimed_until) == ("pending", 0, None)
    assert "Retried by admin" in dead.last_error and "SMTPError: down" in dead.last_error
    assert (claimed.status, claimed.attempts, claimed.claimed_until) == ("pending", 1, lease)
    assert outbox.dead_retry(message_ids=[dead.pk, claimed.pk], now=NOW, by="x") == 0  # nothing dead now
    assert outbox.sweep(now=dead.next_attempt_at) == {"delivered": 1} and delivered == [0]


@pytest.mark.django_db
def test_the_calendar_fan_out_tasks_go_on_after_a_failed_publish(monkeypatch):
    """``renew_watches`` and ``refresh_lists`` queue one task per calendar or account through the module's
    guarded ``enqueue``: a broker error on one publish is logged and the others are still queued."""
    from calendars import tasks as calendar_tasks
    from calendars.models import CalendarConnection
    from calendars.services import watches
    from tests.booking.booking_factories import make_rep

    def publisher(queued):
        def delay(pk):
            if not queued:
                queued.append(None)
                raise ConnectionError("broker down")
            queued.append(pk)

        return delay

    watched, listed = [], []
    monkeypatch.setattr(watches, "watches_due", lambda now: [11, 12, 13])
    monkeypatch.setattr(calendar_tasks.watch_ensure_task, "delay", publisher(watched))
    assert calendar_tasks.renew_watches_task() == 2 and watched == [None, 12, 13]
    ids = [CalendarConnection.objects.create(rep=make_rep(), provider="google").pk for _ in range(3)]
    monkeypatch.setattr(calendar_tasks.calendar_list_refresh_task, "delay", publisher(listed))
    assert calendar_tasks.refresh_lists_task() == 2
    assert len(listed) == 3 and listed[0] is None and len(set(listed[1:]) & set(ids)) == 2


# PASSING PINS ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_save_on_the_outbox_admin_page_changes_nothing(admin_client):
    """The outbox change page is read-only: a Save posted from a page read before the delivery (status
    "pending") is refused and cannot reset a delivered row to pending (a second e-mail) nor clear its
    lease while a worker delivers it."""
    (row,) = make_rows(1, handler="email.prospect")
    OutboxMessage.objects.filter(pk=row.pk).update(status="delivered", attempts=1)
    url = f"/admin/booking/outboxmessage/{row.pk}/change/"
    form = {"status": "pending", "attempts": "0", "claimed_until": "", "next_attempt_at_0": "2026-03-02"}
    response = admin_client.post(url, form)
    assert response.status_code == 403
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("delivered", 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_deliver_each_row_once(monkeypatch):
    """PostgreSQL: two sweeps (two workers, or a sweep still running when beat starts the next) claim with
    ``SELECT … FOR UPDATE SKIP LOCKED``: every row is delivered exactly once."""
    delivered = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def handler(payload):
        with lock:
            delivered.append(payload["n"])

    monkeypatch.setitem(outbox.HANDLERS, "test.once", handler)
    make_rows(40, handler="test.once")
    outcomes, errors = [], []

    def worker():
        try:
            start.wait(10)
            outcomes.append(outbox.sweep(now=NOW + dt.timedelta(minutes=1)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(delivered) == list(range(40))
    assert OutboxMessage.objects.filter(status="delivered", attempts=1).count() == 40
