"""Settings helpers: read the environment and reject bad values loudly.

Every helper raises ``ImproperlyConfigured`` naming the variable, so a typo in a deployment fails at start-up
instead of at the first request.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna
from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, environ=os.environ) -> str | None:
    return environ.get(name, default)


WINDOWED_RATE = re.compile(r"([1-9]\d*)/([1-9]\d*)?(s|sec|m|min|h|hour|d|day)")
RATE_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def windowed_rate(name: str, rate: str) -> tuple[int, int] | None:
    """``"10/15min"`` → ``(10, 900)``: so many per window of that many seconds (``LOGIN_RATE_LIMIT``);
    empty: None (no limit); anything else is refused naming ``name``."""
    if not rate:
        return None
    match = WINDOWED_RATE.fullmatch(rate)
    if match is None:
        raise ImproperlyConfigured(f"{name}: expected e.g. 10/15min, got {rate!r}")
    allowed, many, unit = match.groups()
    return int(allowed), int(many or 1) * RATE_UNIT_SECONDS[unit[0]]


DEV_SECRET_KEY = "insecure-dev-only-key-do-not-use-in-production"  # noqa: S105  (DEBUG only)


def env_secret_key(name: str, *, debug: bool, environ=os.environ) -> str:
    """The key that signs sessions (admin logins), route tokens and password-reset links. Required without
    DEBUG, and then refused where it is public or guessable, as Django's deploy check (W009) judges one:
    the development key printed here, Django's ``django-insecure-`` keys, fewer than 50 characters or fewer
    than 5 different ones (with a known key those can be forged). With DEBUG, a missing key is the
    development one."""
    key = environ.get(name) or ""
    if debug:
        return key or DEV_SECRET_KEY
    if not key:
        raise ImproperlyConfigured(f"{name}: required unless DEBUG=1")
    if key == DEV_SECRET_KEY or key.startswith("django-insecure-") or len(key) < 50 or len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"{name}: not a secret (public, or fewer than 50 characters / 5 different ones); make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return key


def env_zone(name: str, default: str, *, environ=os.environ) -> str:
    """An IANA time zone name (a misspelt one failed at Django's start-up without naming the variable, or,
    where the system has no zoneinfo files, later)."""
    raw = (environ.get(name) or "").strip() or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name}: unknown time zone {raw!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None
    return raw


def env_log_level(name: str, default: str, *, environ=os.environ) -> str:
    """A logging level name in any letter case (``debug`` as celery's and gunicorn's options take it)."""
    raw = (environ.get(name) or "").strip() or default
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        names = ", ".join(sorted(logging.getLevelNamesMapping()))
        raise ImproperlyConfigured(f"{name}: unknown log level {raw!r} (one of {names})")
    return level


def env_bool(name: str, default: bool = False, *, environ=os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected one of 1/0/true/false/yes/no/on/off, got {raw!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None, environ=os.environ
) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}: must be at most {maximum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None, *, environ=os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def _url_bool(name: str, option: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in TRUE | FALSE:
        raise ImproperlyConfigured(f"{name}: {option} must be true or false, got {value!r}")
    return value in TRUE


# Seconds a new PostgreSQL connection may take (``?connect_timeout=N`` overrides). Without one psycopg waits
# 130 s for a host that accepts TCP but never answers (a hung server, a failover's old address behind a
# proxy): each request, and each /readyz probe, ties up a server thread that long instead of failing fast.
DEFAULT_CONNECT_TIMEOUT = 5


def _connect_timeout(name: str, raw: str | None) -> int:
    if raw is None:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:  # libpq's 0 ("wait for ever") included: psycopg would wait its 130 s default
        raise ImproperlyConfigured(
            f"{name}: connect_timeout must be a positive number of seconds, got {raw!r}"
        )
    return value


def parse_database_url(url: str, *, base_dir: Path, name: str = "DATABASE_URL") -> dict:
    """Turn ``postgres://user:pass@host:port/db`` or ``sqlite:///path`` into a Django DATABASES entry.

    PostgreSQL gets ``connect_timeout`` (``DEFAULT_CONNECT_TIMEOUT`` unless the URL names one). SQLite gets
    WAL and ``transaction_mode=IMMEDIATE`` so concurrent writers serialise at BEGIN instead of
    failing half-way with "database is locked".
    """
    if not url or "://" not in url:
        raise ImproperlyConfigured(f"{name}: expected postgres://… or sqlite:///…, got {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query))
    if scheme in {"postgres", "postgresql", "pgsql"}:
        db_name = unquote(parts.path.lstrip("/"))
        if not db_name:
            raise ImproperlyConfigured(f"{name}: the PostgreSQL URL names no database: {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name}: bad port in {url!r}") from None
        # Persistent connections (``?conn_max_age=60``, seconds; README "Production") save a PostgreSQL
        # backend start per request; ``conn_health_checks=true`` re-checks a reused connection first.
        conn_max_age = options.pop("conn_max_age", "0")
        try:
            conn_max_age = int(conn_max_age)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: conn_max_age must be an integer") from None
        if conn_max_age < 0:
            raise ImproperlyConfigured(f"{name}: conn_max_age must be 0 or more seconds")
        health = _url_bool(name, "conn_health_checks", options.pop("conn_health_checks", "false"))
        # ``server_side_binding=true&prepare_threshold=N`` (README "Production"): parameters bound by the
        # server, and a statement run N times on a connection is prepared (planned once).
        if "server_side_binding" in options:
            options["server_side_binding"] = _url_bool(
                name, "server_side_binding", options["server_side_binding"]
            )
        if "prepare_threshold" in options:
            try:
                options["prepare_threshold"] = int(options["prepare_threshold"])
            except ValueError:
                raise ImproperlyConfigured(f"{name}: prepare_threshold must be an integer") from None
        options["connect_timeout"] = _connect_timeout(name, options.get("connect_timeout"))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db_name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": health,
            "OPTIONS": options,
            "TEST": {"NAME": f"test_{db_name}"},
        }
    if scheme == "sqlite":
        raw_path = unquote(parts.path)
        if parts.netloc:
            raise ImproperlyConfigured(
                f"{name}: use sqlite:///relative.db or sqlite:////absolute.db, got {url!r}"
            )
        if raw_path in {"", "/"}:
            raise ImproperlyConfigured(f"{name}: the SQLite URL names no file: {url!r}")
        path = raw_path[1:] if raw_path.startswith("/") else raw_path
        db_path = Path(path) if Path(path).is_absolute() else base_dir / path
        if raw_path == "/:memory:":
            db_path = ":memory:"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(db_path),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                ),
            },
        }
    raise ImproperlyConfigured(f"{name}: unsupported scheme {parts.scheme!r} (use postgres:// or sqlite:///)")


def env_redis_url(name: str, *, environ=os.environ) -> str:
    """Redis URLs (redis://, rediss:// or unix://), each with a host (or, for unix://, a socket path);
    comma-separated for a primary and its replicas, as Django's Redis cache takes them. Checked here, not
    at the first request that uses the cache."""
    raw = (environ.get(name) or "").strip()
    for url in re.split(r"[;,]", raw):  # as Django's Redis cache splits it
        parts = urlsplit(url.strip())
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ImproperlyConfigured(
                f"{name}: expected redis://host:port/db (or rediss://, unix://), got {url!r}"
            )
        if not (parts.path if parts.scheme == "unix" else parts.hostname):
            raise ImproperlyConfigured(
                f"{name}: the URL names no {'socket' if parts.scheme == 'unix' else 'host'}: {url!r}"
            )
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: bad port in {url!r}") from None
    return raw


BROKER_SCHEMES = ("redis", "rediss", "redis+socket", "amqp", "amqps", "memory")
# kombu's spellings of ``ssl_cert_reqs`` (kombu.utils.url.parse_ssl_cert_reqs): any other failed there, with
# a KeyError at the first publish
SSL_CERT_REQS = ("required", "optional", "none", "CERT_REQUIRED", "CERT_OPTIONAL", "CERT_NONE")


def _broker_urls(raw: str) -> list[tuple[str, SplitResult]]:
    return [(url.strip(), urlsplit(url.strip())) for url in raw.split(";")]  # as kombu splits them


def env_broker_url(name: str, *, environ=os.environ) -> str | None:
    """A Celery broker URL (redis://, rediss://, amqp://, amqps:// or memory://, each with a host, or
    redis+socket:///absolute/path for Redis's unix socket); ``;``-separated for failover, as kombu takes
    them. Empty: None (tasks run in-process). A URL without a host (a template variable left empty:
    ``redis://:pw@:6379/0``) is refused: kombu would take it, log "No hostname was supplied" and connect to
    localhost instead. An ``ssl_cert_reqs`` kombu cannot read is refused too (see ``broker_use_ssl``).

    Returned as given: Celery reads the variable itself (``app.conf.broker_url``), not this setting."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return None
    for url, parts in _broker_urls(raw):
        scheme = url.partition("://")[0] if "://" in url else ""
        if scheme not in BROKER_SCHEMES:
            raise ImproperlyConfigured(
                f"{name}: unsupported scheme in {url!r} (expected redis://host:port/db, rediss://, "
                "redis+socket:///path/to/redis.sock, amqp://, amqps:// or memory://)"
            )
        if scheme == "redis+socket":
            if parts.netloc or not parts.path.startswith("/") or parts.path.endswith("/"):
                raise ImproperlyConfigured(
                    f"{name}: expected redis+socket:///absolute/path/to/redis.sock (no host), got {url!r}"
                )
        elif not parts.hostname:
            raise ImproperlyConfigured(f"{name}: the URL names no host: {url!r}")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: bad port in {url!r}") from None
        for key, value in parse_qsl(parts.query):
            if key == "ssl_cert_reqs" and value not in SSL_CERT_REQS:
                raise ImproperlyConfigured(
                    f"{name}: ssl_cert_reqs must be one of {', '.join(SSL_CERT_REQS)}, got {value!r}"
                )
    return raw


def broker_use_ssl(name: str, url: str | None) -> dict | None:
    """Celery's ``broker_use_ssl`` for the broker URL ``url`` (from ``env_broker_url``): a rediss:// URL
    verifies the server's certificate and host name. Given without ``ssl_cert_reqs``, kombu connected with
    ``CERT_NONE`` (it only logs "defaulting to insecure SSL behaviour"): anyone on the path could present
    any certificate and read the Redis password and every task. kombu takes a URL's own ``ssl_*`` options
    over these, so an explicit ``ssl_cert_reqs`` (even ``none``) stands.

    An amqps:// URL (RabbitMQ over TLS) verifies the certificate's host name as well: kombu's own ``ssl=True``
    checked the chain only, so any certificate a public CA issued for any name was taken, and the worker sent
    the broker password to whoever held one. The name checked is the URL's host as written (kombu's own
    placeholder, ``server_hostname: None``, would check ``localhost`` as ``127.0.0.1``). One URL only: the
    same options go to every URL of a failover list, so each broker would be checked against one name (and
    for redis:// or amqp:// kombu would turn TLS on); a list with an amqps:// URL is refused (put one name,
    a load balancer's or a DNS name, in front of the cluster), as is one that mixes such a rediss:// URL
    with other schemes (give those rediss:// URLs their ``ssl_cert_reqs``)."""
    if not url:
        return None
    urls = _broker_urls(url)
    if any(parts.scheme == "amqps" for _, parts in urls):
        if len(urls) > 1:
            raise ImproperlyConfigured(
                f"{name}: an amqps:// broker must be one URL, not a failover list (kombu would check every "
                "broker's certificate against one host name): name one address for the cluster"
            )
        return {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": urls[0][1].hostname}
    unverified = [
        u for u, parts in urls if parts.scheme == "rediss" and "ssl_cert_reqs" not in parse_qs(parts.query)
    ]
    if not unverified:
        return None
    if any(parts.scheme != "rediss" for _, parts in urls):
        raise ImproperlyConfigured(
            f"{name}: a failover list mixing rediss:// with other schemes must name ssl_cert_reqs in each "
            f"rediss:// URL (e.g. ?ssl_cert_reqs=required): {unverified[0]!r}"
        )
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def env_origins(name: str, default: list[str] | None = None, *, environ=os.environ) -> list[str]:
    """Comma-separated web origins (``scheme://host[:port]``, http or https; a leading ``*.`` in the host
    allows its subdomains, as in CSP). Paths, queries, credentials and bad ports are refused.

    An internationalised host is kept in its IDNA ASCII form (``https://bücher.de`` →
    ``https://xn--bcher-kva.de``), as a browser sends it in ``Origin`` and compares it in CSP: kept in
    Unicode it matched no browser's origin, and in the embed page's CSP it made Django MIME-encode the whole
    header, which browsers ignore (the booking page could then be framed by any site). A host with no ASCII
    form is refused."""
    origins = []
    for item in env_list(name, default, environ=environ):
        refused = f"{name}: {item!r} is not an origin like https://www.example.com[:port]"
        try:
            parts = urlsplit(item)
            port = parts.port
        except ValueError:  # a bad port, an unclosed [IPv6, a netloc with "／" (NFKC "/")
            raise ImproperlyConfigured(refused) from None
        host = parts.hostname or ""
        wildcard = "*." if host.startswith("*.") else ""
        bare = host[len(wildcard) :]
        netloc = parts.netloc.lower()
        if bare and not bare.isascii():
            try:
                bare = idna.encode(bare, uts46=True).decode("ascii")
            except (idna.IDNAError, UnicodeError) as exc:
                raise ImproperlyConfigured(f"{refused} (its host has no IDNA ASCII form: {exc})") from None
            netloc = f"{wildcard}{bare}" + ("" if port is None else f":{port}")
        if (
            parts.scheme.lower() not in {"http", "https"}
            or not bare
            or "*" in bare
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or parts.netloc.endswith(":")
            or not all(c.isascii() and (c.isalnum() or c in ".-[]:") for c in bare)
        ):
            raise ImproperlyConfigured(refused)
        origins.append(f"{parts.scheme.lower()}://{netloc}")
    return origins
