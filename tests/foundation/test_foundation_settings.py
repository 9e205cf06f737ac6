"""Settings validation: the env helpers reject bad values naming the variable, and settings loading fails
loudly (in a fresh interpreter, as at start-up) on a bad DATABASE_URL, a missing SECRET_KEY, bad ints or
bools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "raw,expected", [("1", True), ("yes", True), ("ON", True), ("0", False), ("", False)]
)
def test_env_bool_accepts(raw, expected):
    assert env_bool("X_FLAG", not expected, environ={"X_FLAG": raw}) is expected


def test_env_bool_default_and_rejects_naming_variable():
    assert env_bool("X_FLAG", True, environ={}) is True
    with pytest.raises(ImproperlyConfigured, match=r"^X_FLAG: .*'maybe'"):
        env_bool("X_FLAG", environ={"X_FLAG": "maybe"})


def test_env_int_parses_and_rejects_naming_variable():
    assert env_int("X_PORT", 25, environ={"X_PORT": "587"}) == 587
    assert env_int("X_PORT", 25, environ={}) == 25
    with pytest.raises(ImproperlyConfigured, match=r"^X_PORT: expected an integer, got 'twenty'"):
        env_int("X_PORT", 25, environ={"X_PORT": "twenty"})
    with pytest.raises(ImproperlyConfigured, match=r"^X_PORT: must be at least 1, got 0"):
        env_int("X_PORT", 25, minimum=1, environ={"X_PORT": "0"})


def test_env_list_splits_and_trims():
    assert env_list("X_HOSTS", environ={"X_HOSTS": " a.example , b.example,, "}) == ["a.example", "b.example"]
    assert env_list("X_HOSTS", ["d"], environ={}) == ["d"]


def test_parse_database_url_postgres_and_sqlite(tmp_path):
    pg = parse_database_url("postgres://u:p%40ss@db.example:6543/baton?conn_max_age=60", base_dir=tmp_path)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "baton",
        "u",
        "p@ss",
        "db.example",
        "6543",
    )
    assert pg["CONN_MAX_AGE"] == 60
    assert pg["CONN_HEALTH_CHECKS"] is False
    assert "conn_max_age" not in pg["OPTIONS"]
    pooled = parse_database_url(
        "postgres://db.example/baton?conn_max_age=0&conn_health_checks=true", base_dir=tmp_path
    )
    assert (pooled["CONN_MAX_AGE"], pooled["CONN_HEALTH_CHECKS"], pooled["OPTIONS"]) == (
        0,
        True,
        {"connect_timeout": 5},
    )
    bound = parse_database_url(
        "postgres://h/b?server_side_binding=true&prepare_threshold=2", base_dir=tmp_path
    )
    assert bound["OPTIONS"] == {  # types Django checks; a connect timeout unless the URL names its own
        "server_side_binding": True,
        "prepare_threshold": 2,
        "connect_timeout": 5,
    }
    assert parse_database_url("postgres://h/b?connect_timeout=12", base_dir=tmp_path)["OPTIONS"] == {
        "connect_timeout": 12
    }
    lite = parse_database_url("sqlite:///baton.sqlite3", base_dir=tmp_path)
    assert lite["NAME"] == str(tmp_path / "baton.sqlite3")
    assert lite["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in lite["OPTIONS"]["init_command"]
    assert parse_database_url("sqlite:////var/x.db", base_dir=tmp_path)["NAME"] == "/var/x.db"


@pytest.mark.parametrize(
    "url,message",
    [
        ("", "expected postgres://"),
        ("mysql://u@h/db", "unsupported scheme 'mysql'"),
        ("postgres://u@h:99999999/db", "bad port"),
        ("postgres://u@h/", "names no database"),
        ("postgres://u@h/db?conn_max_age=soon", "conn_max_age must be an integer"),
        ("postgres://u@h/db?conn_max_age=-1", "conn_max_age must be 0 or more"),
        ("postgres://u@h/db?conn_health_checks=maybe", "conn_health_checks must be true or false"),
        ("postgres://u@h/db?server_side_binding=1x", "server_side_binding must be true or false"),
        ("postgres://u@h/db?prepare_threshold=often", "prepare_threshold must be an integer"),
        ("postgres://u@h/db?connect_timeout=0", "connect_timeout must be a positive number"),
        ("postgres://u@h/db?connect_timeout=2.5", "connect_timeout must be a positive number"),
        ("sqlite://host/x.db", "use sqlite:///relative.db"),
        ("sqlite:///", "names no file"),
    ],
)
def test_parse_database_url_rejects(url, message, tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL: ") as info:
        parse_database_url(url, base_dir=tmp_path)
    assert message in str(info.value)


def load_settings(show: str = "DATABASES['default']['ENGINE']", **env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these Baton variables set; prints ``show``."""
    unset = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "TRUST_X_FORWARDED_PROTO"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    clean.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{show})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env,message",
    [
        ({"DEBUG": "1", "DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL: unsupported scheme 'mysql'"),
        ({"DEBUG": "1", "DATABASE_URL": "nonsense"}, "DATABASE_URL: expected postgres://"),
        ({"DEBUG": "0"}, "SECRET_KEY: required unless DEBUG=1"),
        ({"DEBUG": "perhaps"}, "DEBUG: expected one of"),
        ({"DEBUG": "1", "EMAIL_PORT": "smtp"}, "EMAIL_PORT: expected an integer, got 'smtp'"),
        ({"DEBUG": "1", "EMAIL_USE_TLS": "sure"}, "EMAIL_USE_TLS: expected one of"),
        ({"DEBUG": "1", "TOKEN_ENCRYPTION_KEYS": "not-a-key"}, "TOKEN_ENCRYPTION_KEYS: key #1"),
        ({"DEBUG": "1", "INSTANT_ROUTE_API_KEYS": "short"}, "INSTANT_ROUTE_API_KEYS: every key needs"),
        (
            {"DEBUG": "1", "BOOKING_RATE_LIMIT": "lots"},
            "BOOKING_RATE_LIMIT: expected e.g. 30/min, got 'lots'",
        ),
        ({"DEBUG": "1", "API_READ_RATE_LIMIT": "9/fortnight"}, "API_READ_RATE_LIMIT: expected e.g. 30/min"),
        # handed to Django's Redis cache as it was, a memcached:// URL started and failed at the first
        # request that counted a rate limit
        ({"DEBUG": "1", "CACHE_URL": "memcached://127.0.0.1:11211"}, "CACHE_URL: expected redis://"),
        ({"DEBUG": "1", "CACHE_URL": "redis://"}, "CACHE_URL: the URL names no host"),
        ({"DEBUG": "1", "CACHE_URL": "redis://h:port/1"}, "CACHE_URL: bad port"),
        (
            {"DEBUG": "1", "EMAIL_TIMEOUT": "120", "BOOKING_OUTBOX_LEASE_SECONDS": "300"},
            "EMAIL_TIMEOUT (120 s) must be at most a third of BOOKING_OUTBOX_LEASE_SECONDS",
        ),
    ],
)
def test_settings_fail_loudly_naming_the_variable(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_a_redis_cache_url_is_taken():
    ok = load_settings("CACHES['default']['LOCATION']", DEBUG="1", CACHE_URL="redis://127.0.0.1:6379/1")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "redis://127.0.0.1:6379/1"


@pytest.mark.parametrize(
    "base_url,static_url",
    [("http://127.0.0.1:8000", "/static/"), ("https://example.com/baton/", "/baton/static/")],
)
def test_static_files_are_under_base_urls_path(base_url, static_url):
    """A sub-path deployment (BASE_URL names the path) loads its scripts from under it, whoever reads
    ``STATIC_URL`` first (the warm-up reads it before any request)."""
    ok = load_settings("STATIC_URL", DEBUG="1", BASE_URL=base_url)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == static_url


def test_settings_load_with_good_values(tmp_path):
    ok = load_settings(SECRET_KEY="k3y-Z9" * 9, DATABASE_URL=f"sqlite:///{tmp_path}/x.db", DEBUG="0")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "django.db.backends.sqlite3"
    pg = load_settings(DEBUG="1", DATABASE_URL="postgres://postgres@127.0.0.1:5432/whatever")
    assert pg.returncode == 0, pg.stderr
    assert pg.stdout.strip() == "django.db.backends.postgresql"


def test_gunicorn_config_picks_workers_and_reads_the_environment(monkeypatch):
    import runpy

    path = str(ROOT / "config" / "gunicorn.conf.py")
    cpus = os.cpu_count() or 1
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    conf = runpy.run_path(path)
    # default: sync workers on one shared socket (an idle worker accepts), 2 x CPUs + 1 of them
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (2 * cpus + 1, 1, "sync")
    assert not conf.get("reuse_port")
    assert callable(conf["post_worker_init"])
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    assert runpy.run_path(path)["workers"] == 7
    # threads: gthread workers, each on its own SO_REUSEPORT socket
    monkeypatch.setenv("GUNICORN_THREADS", "2")
    conf = runpy.run_path(path)
    assert (conf["workers"], conf["threads"], conf["worker_class"], conf["reuse_port"]) == (
        7,
        2,
        "gthread",
        True,
    )
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert runpy.run_path(path)["workers"] == cpus + 1
    monkeypatch.delenv("GUNICORN_THREADS")
    for name, raw, message in [
        ("WEB_CONCURRENCY", "0", "at least 1"),
        ("GUNICORN_THREADS", "four", "integer"),
    ]:
        monkeypatch.setenv(name, raw)
        with pytest.raises(ImproperlyConfigured, match=f"{name}: .*{message}"):
            runpy.run_path(path)
        monkeypatch.delenv(name)


def test_forwarded_proto_is_trusted_only_when_asked():
    show = "SECURE_PROXY_SSL_HEADER"
    off = load_settings(show, DEBUG="1")
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip() == "None"  # Django's default: a client's header means nothing
    on = load_settings(show, DEBUG="1", TRUST_X_FORWARDED_PROTO="1")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"
    bad = load_settings(show, DEBUG="1", TRUST_X_FORWARDED_PROTO="maybe")
    assert bad.returncode != 0 and "TRUST_X_FORWARDED_PROTO" in bad.stderr


@pytest.mark.parametrize(
    "key",
    [
        "insecure-dev-only-key-do-not-use-in-production",  # the development key, public in the repository
        "changeme",
        "django-insecure-" + "a1b2c3d4e5" * 5,
        "aAbB" * 20,  # long, but 4 different characters
        "short-but-varied-key-0123456789",
    ],
)
def test_production_settings_refuse_a_public_or_guessable_secret_key(key):
    """Without DEBUG, SECRET_KEY signs the sessions (admin login), the route tokens and password-reset
    links: a public or guessable key would let them be forged, so start-up refuses it as Django's deploy
    check judges keys (W009), as it refuses a missing one."""
    result = load_settings("SECRET_KEY", DEBUG="0", SECRET_KEY=key, ALLOWED_HOSTS="baton.example.com")
    assert result.returncode != 0, f"settings loaded with SECRET_KEY={key!r}"
    assert "SECRET_KEY: not a secret" in result.stderr
