"""Health endpoints (config/health.py): a load balancer's or orchestrator's probe comes by the machine's
address over plain HTTP, and must learn whether this process can serve bookings."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

from config import health

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


@pytest.fixture
def production(settings):
    """As deployed: DEBUG off, one host name allowed, plain HTTP redirected to HTTPS."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["baton.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    return settings


def probe(path, **extra):
    return Client(HTTP_HOST="10.0.0.7:8000").get(path, **extra)


def test_liveness_answers_a_probe_by_address_over_plain_http(production):
    response = probe("/healthz")
    assert response.status_code == 200, response.status_code
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_readiness_checks_the_database_and_the_cache(production):
    response = probe("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


def test_readiness_fails_while_the_database_does_not_answer(production, monkeypatch, mailoutbox, caplog):
    def down():
        raise OperationalError("could not connect to server: Connection refused")

    with monkeypatch.context() as patched:  # undone before the test database's teardown
        patched.setattr(health.connection, "cursor", down)
        response = probe("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable", "cache": "ok"}
    assert "Connection refused" not in response.content.decode()  # logged, not shown
    assert [r.levelname for r in caplog.records if "Connection refused" in str(r.exc_info)] == ["WARNING"]
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert mailoutbox == []  # a probe every few seconds: no e-mail to ADMINS each time


def test_readiness_fails_while_the_shared_cache_does_not_answer(production):
    with override_settings(CACHES=DEAD_REDIS):  # restored before the conftest clears the cache
        response = probe("/readyz")
        alive = probe("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "unavailable"}
    assert alive.status_code == 200  # the process itself is alive


def test_only_get_and_head(production):
    client = Client(HTTP_HOST="10.0.0.7")
    assert client.head("/healthz").status_code == 200
    response = client.post("/readyz")
    assert response.status_code == 405


def test_other_paths_still_get_the_host_check(production):
    assert probe("/api/v1/meeting-types").status_code == 400  # not in ALLOWED_HOSTS
