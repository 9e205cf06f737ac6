"""Outbox e-mail against a mail server that stalls: the delivery gives up within ``EMAIL_TIMEOUT`` (well
inside its lease) and is retried, so the prospect gets one e-mail. Baton set no ``EMAIL_TIMEOUT`` before
(Django's default: none), so a delivery blocked until its lease ran out, the sweep sent the e-mail again and
the prospect got two; the first test failed then, the second shows the timeout doing its work."""

from __future__ import annotations

import datetime as dt
import socket
import threading

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from booking import outbox
from booking.models import Booking, OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)


class StallingSmtp:
    """A minimal SMTP server on loopback. The first connection is accepted but not greeted until ``release``
    (a server that stalls: a tarpit, a half-open connection after a failover); later ones are served."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.delivered: list[list[str]] = []  # recipients of each message accepted
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            first = self.connections == 1
            threading.Thread(target=self._serve, args=(conn, first), daemon=True).start()

    def _serve(self, conn, stall):
        try:
            if stall:
                self.stalled.set()
                self.release.wait(120)
            f = conn.makefile("rwb")

            def say(line):
                f.write(line.encode() + b"\r\n")
                f.flush()

            say("220 fake ESMTP")
            rcpts = []
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    say("250 fake")
                elif verb == b"MAIL":
                    rcpts = []
                    say("250 OK")
                elif verb == b"RCPT":
                    rcpts.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                    say("250 OK")
                elif verb == b"DATA":
                    say("354 go on")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.delivered.append(rcpts)
                    say("250 queued")
                elif verb == b"QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 OK")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.release.set()
        self.sock.close()


@pytest.fixture
def undelivered_booking(demo, monkeypatch):
    """A booking made through the public API whose outbox rows were not handed to Celery (as while the
    broker is unreachable: the rows wait for a worker or the sweep)."""
    from rest_framework.test import APIClient

    from tests.foundation.conftest import book_demo

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "enqueue", lambda ids: None)
        return Booking.objects.get(pk=book_demo(APIClient())["id"])


def test_the_default_email_timeout_is_well_inside_the_outbox_lease(settings):
    assert settings.EMAIL_TIMEOUT * 3 <= settings.BOOKING_OUTBOX_LEASE_SECONDS


def test_a_stalled_smtp_server_fails_the_delivery_in_time_and_the_retry_sends_once(
    undelivered_booking, settings
):
    """The documented production set-up (``EMAIL_BACKEND=…smtp.EmailBackend``) against a server that
    accepts the connection and never greets: the delivery gives up after ``EMAIL_TIMEOUT`` (2 s here), well
    before its lease (30 s) runs out, and the sweep's retry sends the e-mail once. Before, Django's SMTP
    backend waited without a timeout: the lease ran out, the sweep sent the e-mail, and when the stalled
    connection moved at last the prospect had two (and the worker was held meanwhile)."""
    server = StallingSmtp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_TIMEOUT = 2
    settings.BOOKING_OUTBOX_LEASE_SECONDS = 30
    row = OutboxMessage.objects.get(handler="email.prospect", booking=undelivered_booking)
    outcome = {}

    def first_worker():
        try:
            outcome["first"] = outbox.deliver(message_id=row.pk)
        finally:
            db_connection.close()

    worker = threading.Thread(target=first_worker, daemon=True)
    try:
        worker.start()
        assert server.stalled.wait(20)
        worker.join(settings.BOOKING_OUTBOX_LEASE_SECONDS - 5)
        gave_up_in_time = not worker.is_alive()
        # the sweep once the lease would have run out (a retry of the failed delivery is due by then)
        later = timezone.now() + dt.timedelta(seconds=settings.BOOKING_OUTBOX_LEASE_SECONDS + 61)
        swept = outbox.sweep(now=later)
        server.release.set()  # the stalled connection moves on at last
        worker.join(20)
    finally:
        server.close()
    prospect_copies = [r for r in server.delivered if r == ["pat@example.org"]]
    assert gave_up_in_time, (
        f"the delivery was still blocked after {settings.BOOKING_OUTBOX_LEASE_SECONDS - 5} s"
    )
    assert swept, "the failed delivery was not retried"
    assert len(prospect_copies) == 1, f"the prospect got {len(prospect_copies)} copies"
