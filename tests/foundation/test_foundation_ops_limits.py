"""Production operation: the rate limits with Redis (CACHE_URL) shared by several processes, Redis down, a
broker URL without a host, and the deploy check covering the sign-in limit.

Redis tests use the local server's db 9 only (``redis://127.0.0.1:6379/9``) and flush nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from booking.api.throttles import BookingRateThrottle

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB9 = "redis://127.0.0.1:6379/9"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="needs a Redis server on 127.0.0.1:6379")


def _redis_cache(location: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_request(address: str = "203.0.113.7") -> Request:
    return Request(APIRequestFactory().post("/api/v1/meeting-types/demo/bookings", REMOTE_ADDR=address))


# --- 1. the public POST limit does not hold when several workers share Redis ------------------------------


@needs_redis
def test_the_booking_rate_limit_holds_when_requests_from_several_workers_share_redis(settings):
    """With ``CACHE_URL`` (README: "rate-limit counters shared by all workers") the booking POST limit is
    DRF's ``SimpleRateThrottle``: each request reads the client's whole history list from Redis, appends to
    it and writes the list back. Requests of one client served at the same time by different gunicorn
    workers read the same list and overwrite each other's entry, so a client that keeps five connections
    busy gets two to three times ``BOOKING_RATE_LIMIT`` (nearly as if counted per process, what
    ``baton.W001`` warns about), unlike the sign-in limit's atomic ``incr``. Here five callers (the five
    workers), each checking the limit for 20 POSTs of one address a few milliseconds apart, against 10."""
    settings.BOOKING_RATE_LIMIT = "10/min"
    allowed: list[bool] = []
    barrier = threading.Barrier(5)

    def worker():
        barrier.wait()
        for _ in range(20):
            allowed.append(BookingRateThrottle().allow_request(_post_request(), None))
            time.sleep(0.005)  # the rest of the request

    threads = [threading.Thread(target=worker) for _ in range(5)]
    with override_settings(CACHES=_redis_cache(REDIS_DB9)):
        cache.clear()  # db 9 only
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        finally:
            cache.clear()
    assert sum(allowed) == 10, f"{sum(allowed)} of 100 POSTs from one address let through, the limit is 10"


# --- 2. Redis down: every public API request and every sign-in is a 500 ------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "/api/v1/meeting-types", None),
        ("post", "/accounts/login/", {"username": "dana", "password": "wrong-password"}),
    ],
    ids=["api-read", "sign-in"],
)
def test_redis_down_does_not_turn_the_booking_api_and_sign_in_into_500s(settings, method, path, data):
    """The rate limits count in the cache (``CACHE_URL``, typically the broker's Redis, README "Production").
    When that Redis restarts or is unreachable, ``booking.api.throttles`` (DRF's ``cache.get``) and
    ``config.login._count`` (``cache.add``) raise redis' ``ConnectionError``: every booking page's slots
    request, every booking and every sign-in (admin included) answers 500 for as long as Redis is down,
    although the broker side is built to ride out a Redis restart ("a slow or unreachable broker never holds
    up a booking"). A limit whose counter cannot be read should let the request through and log it."""
    settings.API_READ_RATE_LIMIT = "300/min"
    settings.LOGIN_RATE_LIMIT = "10/15min"
    client = APIClient(raise_request_exception=False)
    with override_settings(CACHES=_redis_cache(f"redis://127.0.0.1:{_free_port()}/9")):  # nothing listens
        response = getattr(client, method)(path, data) if data else getattr(client, method)(path)
    assert response.status_code != 500, f"{method.upper()} {path} answered 500 with the cache's Redis down"


# --- 3. a broker URL without a host is accepted, and kombu quietly falls back to localhost ------------


def _load_settings(**env) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CACHE_URL", "DATABASE_URL")
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1")
    code = "import django; django.setup(); from django.conf import settings as s; print(s.CELERY_BROKER_URL)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@:6379/0",  # redis://:${REDIS_PASSWORD}@${REDIS_HOST}:6379/0 with REDIS_HOST unset
        "redis:///0",
    ],
)
def test_a_broker_url_without_a_host_is_refused_at_start_up(url, tmp_path):
    """README: every setting is read by ``config/env.py``, "whose helpers reject bad values loudly";
    ``CACHE_URL`` without a host is refused ("the URL names no host"). ``CELERY_BROKER_URL`` is only checked
    for its scheme, so a URL whose host is missing (a template variable left empty) is taken, and at the
    first publish kombu logs "No hostname was supplied. Reverting to default 'localhost'" (the line the
    bench's ``memory://`` makes its workers print) and sends every task, outbox e-mails included, to
    whatever Redis runs on the web server's own localhost, or nowhere."""
    result = _load_settings(CELERY_BROKER_URL=url, DATABASE_URL=f"sqlite:///{tmp_path}/b.db")
    assert result.returncode != 0, f"settings took CELERY_BROKER_URL={url!r}: {result.stdout.strip()!r}"
    assert "ImproperlyConfigured" in result.stderr and "CELERY_BROKER_URL" in result.stderr


# --- 4. the deploy check says nothing about a sign-in limit counted per process -----------------------------


def test_the_deploy_check_warns_when_the_sign_in_limit_is_counted_per_process(settings):
    """README "Production": without ``CACHE_URL`` "the rate-limit counters live in each worker process, so a
    client gets the limit once per worker; ``manage.py check --deploy`` says so (baton.W001)", in the
    sentence naming ``LOGIN_RATE_LIMIT`` too. ``booking.checks.rate_limit_is_shared`` looks only at
    ``BOOKING_RATE_LIMIT`` and ``API_READ_RATE_LIMIT``: an operator who limits the API at the proxy (both
    empty) is told nothing while the password-guessing limit counts per worker (5 workers: 50 guesses per
    window instead of 10)."""
    from booking.checks import rate_limit_is_shared

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.BOOKING_RATE_LIMIT = ""
    settings.API_READ_RATE_LIMIT = ""
    settings.LOGIN_RATE_LIMIT = "10/15min"
    assert [w.id for w in rate_limit_is_shared()] == ["baton.W001"]


# --- pins of the fixes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "taken"),
    [
        ("redis://:pw@redis.internal:6379/0", True),
        ("amqp://guest:guest@rabbit//;amqp://guest:guest@rabbit-2//", True),  # kombu's failover list
        ("memory://localhost/", True),
        ("memory://", False),
        ("amqp:///", False),
        ("redis://a:6379/0;redis://:pw@:6379/0", False),
        ("redis://localhost:port/0", False),
        ("sqs://k:s@", False),
    ],
)
def test_the_broker_url_names_a_host(url, taken):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import env_broker_url

    if taken:
        assert env_broker_url("CELERY_BROKER_URL", environ={"CELERY_BROKER_URL": url}) == url
    else:
        with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL"):
            env_broker_url("CELERY_BROKER_URL", environ={"CELERY_BROKER_URL": url})
    assert env_broker_url("CELERY_BROKER_URL", environ={}) is None


def test_a_limited_client_is_told_the_rest_of_its_window(settings):
    """Fixed windows: past the limit, ``wait()`` (``Retry-After``) is what is left of the window."""
    import time_machine

    settings.BOOKING_RATE_LIMIT = "2/min"
    cache.clear()
    with time_machine.travel(1_800_000_040.0, tick=False):  # 40 s into a minute
        throttles = [BookingRateThrottle() for _ in range(3)]
        assert [t.allow_request(_post_request("198.51.100.9"), None) for t in throttles] == [
            True,
            True,
            False,
        ]
        assert throttles[-1].wait() == pytest.approx(20)
    with time_machine.travel(1_800_000_061.0, tick=False):  # the next minute
        assert BookingRateThrottle().allow_request(_post_request("198.51.100.9"), None)
    cache.clear()


def test_a_cache_down_is_logged_once_a_minute_not_per_request(settings, caplog, monkeypatch):
    import booking.api.throttles as throttles

    settings.API_READ_RATE_LIMIT = "300/min"
    monkeypatch.setattr(throttles, "_failure_logged_at", float("-inf"))
    request = Request(APIRequestFactory().get("/api/v1/meeting-types", REMOTE_ADDR="203.0.113.7"))
    with (
        override_settings(CACHES=_redis_cache(f"redis://127.0.0.1:{_free_port()}/9")),
        caplog.at_level("ERROR"),
    ):
        assert all(throttles.ReadRateThrottle().allow_request(request, None) for _ in range(5))
    errors = [r for r in caplog.records if r.name == "booking.api.throttles"]
    assert len(errors) == 1 and "API_READ_RATE_LIMIT not enforced" in errors[0].getMessage()


@needs_redis
def test_a_counter_in_redis_always_has_its_expiry():
    """Django's ``incr`` is EXISTS then INCRBY: a counter that expired between the two came back from INCRBY
    without an expiry and stayed in Redis for good (one leaked key per such race; a sign-in's ``decr`` left a
    -1 the same way). Counting sets the expiry of a counter that has none, and an uncount of a counter
    whose window is over creates nothing."""
    from booking.api.throttles import count_in_window, uncount

    with override_settings(CACHES=_redis_cache(REDIS_DB9)):
        cache.clear()
        client, full = _raw(cache, "throttle_test_leak")
        client.set(full, 5)  # as left by the race: no expiry
        assert count_in_window("throttle_test_leak", 60) == 6
        assert 0 < client.ttl(full) <= 60
        assert count_in_window("throttle_test_new", 60) == 1
        assert 0 < client.ttl(_raw(cache, "throttle_test_new")[1]) <= 60
        uncount("throttle_test_gone")
        assert not client.exists(_raw(cache, "throttle_test_gone")[1])
        uncount("throttle_test_new")
        assert cache.get("throttle_test_new") == 0
        cache.clear()


def _raw(backend, key):
    full = backend.make_and_validate_key(key)
    return backend._cache.get_client(full, write=True), full
