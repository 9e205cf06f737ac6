"""The outbox publisher: a booking's response never waits for the broker; rows committed during a publish go
out together, as do rows submitted within the linger; a forked worker starts its own thread; a failed publish
is logged (the sweep delivers)."""

from __future__ import annotations

import threading
import time

import pytest

from booking.models import OutboxMessage
from booking.publisher import Publisher, publisher
from booking.tasks import deliver_outbox_messages
from config.celery import app as celery_app
from tests.booking.booking_factories import body

URL = "/api/v1/meeting-types/intro/bookings"


class Broker:
    """A stand-in for ``apply_async`` that holds every publish until released."""

    def __init__(self):
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, ids):
        self.entered.set()
        assert self.release.wait(10)
        self.calls.append(list(ids))


@pytest.mark.django_db
@pytest.mark.usefixtures("clock")
def test_the_response_does_not_wait_for_the_broker(
    api, meeting_type, monkeypatch, django_capture_on_commit_callbacks
):
    broker = Broker()
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(deliver_outbox_messages, "apply_async", lambda args, **kw: broker(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, body(), format="json")
    assert response.status_code == 201
    assert broker.calls == []  # answered while the broker still hangs
    broker.release.set()
    assert publisher.flush(10)
    ids = sorted(OutboxMessage.objects.filter(booking_id=response.json()["id"]).values_list("pk", flat=True))
    assert len(ids) == 3 and broker.calls == [ids]


def test_rows_submitted_during_a_publish_go_out_together():
    broker = Broker()
    batched = Publisher(broker)
    batched.submit([1, 2])
    assert broker.entered.wait(10)  # the first publish is under way (and held)
    batched.submit([3])
    batched.submit([4, 5])
    assert not batched.flush(0.05)
    broker.release.set()
    assert batched.flush(10)
    assert broker.calls == [[1, 2], [3, 4, 5]]


@pytest.mark.parametrize("linger, expected", [(0.0, [[1], [2]]), (0.5, [[1, 2]])])
def test_rows_submitted_within_the_linger_go_out_in_one_message(linger, expected):
    """Under load one publish carries several bookings' rows; without the linger (the control) rows
    submitted 20 ms apart each cost a publish."""
    calls = []
    lingering = Publisher(calls.append, linger=linger)
    lingering.submit([1])
    time.sleep(0.02)
    lingering.submit([2])
    assert lingering.flush(10)
    assert calls == expected


def test_the_web_processes_publisher_lingers_briefly():
    assert 0 < publisher._linger <= 0.1  # emails wait at most this long for company


def test_a_forked_child_starts_its_own_thread(monkeypatch):
    calls = []
    forked = Publisher(calls.append)
    forked.submit([1])
    assert forked.flush(10)
    parent_thread = forked._thread
    monkeypatch.setattr("booking.publisher.os.getpid", lambda: -1)  # as in a child after fork()
    forked.submit([2])
    assert forked.flush(10)
    assert forked._thread is not parent_thread and forked._thread.is_alive()
    assert calls == [[1], [2]]


def test_a_failed_publish_is_logged_and_later_rows_still_go_out(caplog):
    calls = []

    def flaky(ids):
        if not calls:
            calls.append("failed")
            raise ConnectionRefusedError("broker down")
        calls.append(ids)

    failing = Publisher(flaky)
    failing.submit([7])
    assert failing.flush(10)
    failing.submit([8])
    assert failing.flush(10)
    assert "could not enqueue outbox messages [7]" in caplog.text and "broker down" in caplog.text
    assert calls == ["failed", [8]]


def test_a_real_fork_gives_the_child_a_fresh_publisher():
    """``os.register_at_fork`` resets the module's publisher in the child even if a lock was held."""
    import os

    publisher._lock.acquire()  # as if a parent thread held it at the moment of the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: must not deadlock, and must own a new thread
            ok = not publisher._lock.locked() and publisher._thread is None and publisher._pending == 0
            os._exit(0 if ok else 1)
    finally:
        publisher._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
