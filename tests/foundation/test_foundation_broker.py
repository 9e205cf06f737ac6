"""Background work with a real broker: which CELERY_BROKER_URL forms the settings take (and what kombu then
does with them: a rediss:// broker's certificate is verified), and that a web request does not wait when the
broker's host does not answer (calendar tasks are published from a background thread).

The outbox itself held up against a real Redis (db 9) and real in-thread workers: 42 bookings delivered by a
4-thread worker racing two sweep loops on PostgreSQL sent each e-mail once, and a task retried through Redis
after an SMTP failure delivered its rows."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def _settings_process(code: str, **env) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CACHE_URL", "DATABASE_URL")
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1")
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- rediss:// verifies the broker's TLS certificate ---------------------------------------------------


def test_a_rediss_broker_url_verifies_the_servers_certificate(tmp_path):
    """``config/env.py`` takes ``rediss://`` ("rediss://" is in its list of broker schemes) and the README
    says its helpers "reject bad values loudly". Given without ``ssl_cert_reqs``, kombu logs "Secure redis
    scheme specified (rediss) with no ssl options, defaulting to insecure SSL behaviour" and connects with
    ``ssl_cert_reqs=CERT_NONE``: anyone on the path presents any certificate and reads the Redis password
    (sent in AUTH) and every task. Either the settings refuse such a URL (naming CELERY_BROKER_URL and
    ssl_cert_reqs) or the connection checks the certificate."""
    code = "from config.celery import app; print(app.connection_for_write().ssl)"
    result = _settings_process(
        code,
        CELERY_BROKER_URL="rediss://:s3cret@redis.example.com:6380/0",
        DATABASE_URL=f"sqlite:///{tmp_path}/s.db",
    )
    if result.returncode != 0:
        assert "ImproperlyConfigured" in result.stderr and "CELERY_BROKER_URL" in result.stderr, result.stderr
        return
    assert "CERT_NONE" not in result.stdout, (
        f"rediss:// accepted and the broker's certificate is not verified: {result.stdout.strip()} "
        f"({result.stderr.strip()[-200:]})"
    )


# --- Broker URLs kombu supports are taken; ones it would misread are refused -------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "amqps://baton:s3cret@b-1234.mq.eu-west-1.amazonaws.com:5671//",  # RabbitMQ over TLS (Amazon MQ)
        "redis+socket:///run/redis/redis.sock",  # Redis on the same host, over its unix socket
    ],
)
def test_broker_urls_that_kombu_supports_are_taken(url, tmp_path):
    """Celery's documented broker URLs include ``amqps://`` (kombu's pyamqp SSL transport) and Redis over a
    unix socket (``redis+socket:///path``). ``env_broker_url`` accepts only redis://, rediss://, amqp:// and
    memory:// and refuses these at start-up ("unsupported scheme" / "names no host"): a TLS-only RabbitMQ
    (Amazon MQ accepts nothing else) or a socket-only Redis cannot be used at all, while plain-text
    ``amqp://`` to the same host is taken."""
    result = _settings_process(
        "from django.conf import settings; print(settings.CELERY_BROKER_URL)",
        CELERY_BROKER_URL=url,
        DATABASE_URL=f"sqlite:///{tmp_path}/s.db",
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
    assert result.stdout.strip() == url


# --- A broker host that drops packets does not hold up a push webhook ---------------------------------------


@pytest.fixture
def silent_broker(monkeypatch):
    """A broker address whose host drops the connection attempts (a stopped VM, a partition): a listening
    socket whose accept queue is full, so new SYNs go unanswered until the client's connect timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{port}/9")
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    yield
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    for filler in fillers:
        filler.close()
    server.close()


@pytest.mark.django_db(transaction=True)
def test_a_graph_notification_batch_is_answered_at_once_while_the_broker_host_is_silent(silent_broker):
    """``calendars/webhooks.py``: "They answer at once: the work is a queued sync"; README: "a web request's
    publish still fails fast". Microsoft Graph wants a notification answered within 3 seconds. Each
    notification's ``request_sync`` publishes ``calendars.sync_calendar`` synchronously in the request
    (``calendars.tasks.enqueue`` → ``task.delay``), and with the broker's host not answering each publish
    waits out the 2 s connect timeout: a batch naming three calendars is answered after ~6 s (each further
    calendar adds 2 s). The booking path publishes from a background thread (``booking.publisher``) for
    exactly this reason; the calendar paths do not."""
    from calendars.models import Calendar, CalendarConnection
    from calendars.services.watches import _digest
    from routing.models import Rep

    rep = Rep.objects.create(name="Dana", email="dana@example.com", timezone="Europe/Berlin")
    connection = CalendarConnection.objects.create(
        rep=rep, provider=CalendarConnection.Provider.MICROSOFT, account_email=rep.email, secret_blob="x"
    )
    items = []
    for i in range(3):
        Calendar.objects.create(
            connection=connection,
            external_id=f"cal-{i}",
            blocks_availability=True,
            watch_channel_id=f"sub-{i}",
            watch_secret_hash=_digest(f"state-{i}"),
        )
        items.append({"subscriptionId": f"sub-{i}", "clientState": f"state-{i}", "changeType": "updated"})
    assert not transaction.get_connection().in_atomic_block  # as under gunicorn: on_commit runs at once
    started = time.monotonic()
    answer = Client().post(
        "/calendars/webhooks/microsoft", data={"value": items}, content_type="application/json"
    )
    took = time.monotonic() - started
    assert answer.status_code == 202
    assert Calendar.objects.filter(sync_requested_at__isnull=False).count() == 3  # the requests stand
    assert took < 3, f"Graph's notification answered after {took:.1f} s (its limit is 3 s)"


@pytest.mark.parametrize(
    "url, refused",
    [
        ("redis+socket://run/redis.sock", "absolute"),  # a host-like first segment: kombu used /redis.sock
        ("rediss://redis.example.com:6380/0?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ],
)
def test_a_broker_url_kombu_would_misread_is_refused_by_name(url, refused):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_broker_url

    with pytest.raises(ImproperlyConfigured) as caught:
        env_broker_url("CELERY_BROKER_URL", environ={"CELERY_BROKER_URL": url})
    assert "CELERY_BROKER_URL" in str(caught.value) and refused in str(caught.value), caught.value


def test_the_certificate_check_of_a_rediss_failover_list():
    """A rediss:// URL without ``ssl_cert_reqs`` verifies certificates (``CERT_REQUIRED`` for the whole
    connection); one naming it keeps its own choice; mixed with another scheme in a failover list (where
    the options would turn TLS on for plain redis://) it must name its own, or the settings refuse it."""
    import ssl

    from django.core.exceptions import ImproperlyConfigured

    from config.env import broker_use_ssl

    assert broker_use_ssl("B", "rediss://a:6380/0;rediss://b:6380/0") == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert broker_use_ssl("B", "rediss://a:6380/0?ssl_cert_reqs=none") is None
    assert broker_use_ssl("B", "redis://a:6379/0;rediss://b:6380/0?ssl_cert_reqs=required") is None
    assert broker_use_ssl("B", "redis://a:6379/0") is None
    with pytest.raises(ImproperlyConfigured, match="ssl_cert_reqs"):
        broker_use_ssl("B", "redis://a:6379/0;rediss://b:6380/0")


def test_an_amqps_broker_checks_the_name_written_in_its_url_and_is_one_url():
    """An amqps:// broker's certificate is checked against the host written in the URL (kombu's own
    ``server_hostname: None`` placeholder checked ``localhost`` as ``127.0.0.1``). A failover list of
    amqps:// URLs is refused: the one set of options goes to every URL, and kombu filled the placeholder
    once, so the second broker was checked against the first one's name and the failover never connected."""
    import ssl

    from django.core.exceptions import ImproperlyConfigured

    from config.env import broker_use_ssl

    assert broker_use_ssl("B", "amqps://u:p@localhost:5671//") == {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": "localhost",
    }
    assert broker_use_ssl("B", "amqps://u:p@mq.example.com//")["server_hostname"] == "mq.example.com"
    for url in ("amqps://u:p@b1.example.com//;amqps://u:p@b2.example.com//", "amqp://a//;amqps://b//"):
        with pytest.raises(ImproperlyConfigured, match="one URL"):
            broker_use_ssl("B", url)


def test_an_amqps_broker_is_refused_when_its_certificate_names_another_host(tmp_path):
    """``CELERY_BROKER_URL=amqps://baton:s3cret@127.0.0.1:<port>//`` (RabbitMQ over TLS). The host there
    presents a certificate that a trusted CA issued for another name (``wrong.example``: any certificate
    anyone can buy for their own domain). kombu's amqps transport checked the chain but not the host name
    (``ssl=True``: no ``server_hostname``, so ``check_hostname`` off): the worker completed the handshake and
    went on to AMQP, where it sends the broker password. Now the handshake fails on the host name
    (``config.env.broker_use_ssl``)."""
    import ssl
    import threading

    from tests.fakes.http import make_self_signed_cert

    cert, key = make_self_signed_cert(tmp_path, dns_name="wrong.example")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(20)
    port = listener.getsockname()[1]
    heard: list[bytes] = []

    def serve():
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        raw.settimeout(10)
        try:
            with server_ctx.wrap_socket(raw, server_side=True) as tls:
                heard.append(tls.recv(8))  # AMQP's protocol header, sent once the handshake is accepted
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CACHE_URL", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path}/s.db",
        CELERY_BROKER_URL=f"amqps://baton:s3cret@127.0.0.1:{port}//",
        SSL_CERT_FILE=cert,  # the CA that issued it is trusted, as a public CA is
    )
    code = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "conn = app.connection_for_write()\n"
        "try:\n"
        "    conn.ensure_connection(max_retries=0, timeout=5)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    try:
        run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60)
    finally:
        thread.join(15)
        listener.close()
    assert not heard, (
        f"the worker accepted a certificate for wrong.example at 127.0.0.1 and sent {heard[0]!r}"
    )
    assert "mismatch" in run.stdout.decode(), (
        run.stdout.decode() + run.stderr.decode()
    )  # refused for its name
