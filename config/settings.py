"""Baton settings, read from the environment (README "Production" lists them).

Bad values fail at start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from corsheaders.defaults import default_headers as default_cors_headers
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    broker_use_ssl,
    env_bool,
    env_broker_url,
    env_int,
    env_list,
    env_log_level,
    env_origins,
    env_redis_url,
    env_secret_key,
    env_str,
    env_zone,
    parse_database_url,
    windowed_rate,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret_key("SECRET_KEY", debug=DEBUG)

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Behind a reverse proxy that terminates TLS and sets X-Forwarded-Proto itself (replacing any the client
# sent): what it forwards counts as HTTPS (CSRF's origin check on the admin's forms, absolute URLs). Leave it
# off where clients can reach the app directly, or they could claim HTTPS.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Public base URL used in emails and manage links, e.g. https://book.example.com
BASE_URL = (env_str("BASE_URL", "http://127.0.0.1:8000") or "").rstrip("/")
# With DEBUG, BASE_URL's own host too (an IPv6 address in brackets, as a request names it): ``make run
# HOST=0.0.0.0`` (or ``HOST=[::1]``) serves the URL it prints.
_base_host = urlsplit(BASE_URL).hostname or ""
_debug_hosts = ["127.0.0.1", "localhost", "[::1]", f"[{_base_host}]" if ":" in _base_host else _base_host]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [h for h in dict.fromkeys(_debug_hosts) if h] if DEBUG else [])
if not BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"BASE_URL: must start with http:// or https://, got {BASE_URL!r}")
# The domain part of the iCalendar UIDs of Baton's invitations (booking-<pk>-<created>@<domain>), default
# BASE_URL's host. It tells this installation's invitations from any other's in a rep's calendar feed, and a
# calendar matches a booking's updates and cancellation to its invitation by the UID: keep it when BASE_URL
# moves.
ICAL_UID_DOMAIN = env_str("ICAL_UID_DOMAIN", urlsplit(BASE_URL).hostname) or ""
if not re.fullmatch(r"[A-Za-z0-9.:-]+", ICAL_UID_DOMAIN):
    raise ImproperlyConfigured(f"ICAL_UID_DOMAIN: expected a domain name, got {ICAL_UID_DOMAIN!r}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here, not a CDN's "@latest"
    "corsheaders",
    "django_celery_beat",
    "routing",
    "calendars",
    "booking",
    "leads",
    "insights",
]

MIDDLEWARE = [
    "config.health.HealthCheckMiddleware",  # first: probes come by address over plain HTTP
    "django.middleware.security.SecurityMiddleware",
    "config.admin_guards.AdminNulMiddleware",  # a NUL in an admin link: 400, not a 500 on PostgreSQL
    "config.admin_guards.AdminSelectionMiddleware",  # an admin action's selection that is no id: dropped
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, as django-cors-headers asks
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "booking.middleware.FramingPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(env_str("DATABASE_URL", "sqlite:///baton.sqlite3") or "", base_dir=BASE_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    # reps sign in on a public page: the 20,000 most common passwords and all-digit ones are refused
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# under BASE_URL's path: a sub-path deployment (SCRIPT_NAME /baton, BASE_URL https://example.com/baton) loads
# its files from under it. Not Django's relative form, which takes the script prefix of the first read: the
# warm-up and the favicon redirect read it before any request, under "/".
STATIC_URL = f"{urlsplit(BASE_URL).path.rstrip('/')}/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Celery: without a broker, tasks run in-process (eagerly); with one, a worker and beat run them.
# redis://, rediss://, amqp://, amqps:// or memory:// with a host, or redis+socket:///path
# (config/env.py:env_broker_url); a rediss:// one verifies the server's certificate unless it names
# ssl_cert_reqs (config/env.py:broker_use_ssl)
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL")
CELERY_BROKER_USE_SSL = broker_use_ssl("CELERY_BROKER_URL", CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_TASK_ALWAYS_EAGER:
    # An eager task never reaches a broker, but Celery still takes a producer from its pool for it (to read
    # the serializer), and with no URL kombu warns "No hostname was supplied" once per process, as if
    # something were misconfigured. kombu's in-memory transport, named with a host, keeps that producer quiet
    # and off the network; a worker or beat refuses to start without a real broker (config/celery.py).
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A worker keeps reconnecting through a broker restart (and waits for a broker still starting): with one
# retry a Redis restart of a few seconds ended every worker for good, and nothing was consumed until
# someone restarted them.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing from a web request must fail fast when the broker is down: the outbox sweep delivers later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# A safety net under the peers' own timeouts (SMTP, Google, Graph, ICS): a task still running after 10 min
# is stopped (soft: an exception the task's error handling records) rather than holding its worker for good.
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_TIME_LIMIT = 600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Without a broker, ``manage.py runserver`` runs the due PeriodicTasks itself (config/inprocess_beat.py).
INPROCESS_SCHEDULER = env_bool("INPROCESS_SCHEDULER", True)

# --- Token encryption (MultiFernet): comma-separated Fernet keys, the first encrypts, all decrypt.
TOKEN_ENCRYPTION_KEYS = env_list("TOKEN_ENCRYPTION_KEYS", [])
for _index, _key in enumerate(TOKEN_ENCRYPTION_KEYS):
    try:
        Fernet(_key)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"TOKEN_ENCRYPTION_KEYS: key #{_index + 1} is not a valid Fernet key "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None

# --- Email
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Baton <baton@localhost>")

# --- Booking
# Origins allowed to frame the booking page (CSP frame-ancestors), e.g. https://www.example.com
EMBED_ALLOWED_ORIGINS = env_origins("EMBED_ALLOWED_ORIGINS", [])
BOOKING_RATE_LIMIT = env_str("BOOKING_RATE_LIMIT", "30/min")
# The public GETs (slots, meeting types, a booking) per client address: a slots request for a large pool over
# 62 days is the API's most expensive answer. Generous: a booking page asks a few per month shown.
API_READ_RATE_LIMIT = env_str("API_READ_RATE_LIMIT", "300/min")
# Failed sign-ins allowed per client address and per username in a window, e.g. 10/15min (config/login.py:
# /accounts/login/ and /admin/login/ answer 429 past it); empty: no limit.
LOGIN_RATE_LIMIT = env_str("LOGIN_RATE_LIMIT", "10/15min") or ""
# Secrets for POST /api/v1/route (instant routing, server to server); empty: that endpoint is off.
INSTANT_ROUTE_API_KEYS = env_list("INSTANT_ROUTE_API_KEYS", [])
BOOKING_LOCK_TIMEOUT_MS = env_int("BOOKING_LOCK_TIMEOUT_MS", 3000, minimum=1)
CALENDAR_STALENESS_MINUTES = env_int("CALENDAR_STALENESS_MINUTES", 180, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, and a body nested past the reader's depth is a 400 (DRF's own parser let it be a 500)
    "DEFAULT_PARSER_CLASSES": ["booking.api.parsers.SafeJSONParser"],
    "DEFAULT_THROTTLE_RATES": {"booking": BOOKING_RATE_LIMIT, "read": API_READ_RATE_LIMIT},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baton API",
    "DESCRIPTION": "Calendar-aware meeting routing: slots, bookings, cancellations, reschedules.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # the docs pages' JavaScript from this installation's static files (drf-spectacular-sidecar): from a
    # CDN's "@latest" they changed under us, ran third-party code on our origin, and were blank offline
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "booking.api.schema.rate_limit_responses",
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "instantRouteKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "One of INSTANT_ROUTE_API_KEYS: server to server, never in a browser.",
            }
        }
    },
}

# CORS for the prospect-facing API only (docs/booking-api.md "Browsers and other origins"): any origin unless
# API_CORS_ORIGINS lists them (``*.`` allows a domain's subdomains); never credentials.
CORS_URLS_REGEX = r"^/api/v1/(meeting-types(/.*)?|bookings/(?!id/)[^/]+(/(cancel|reschedule|slots))?)$"
_cors = (env_str("API_CORS_ORIGINS", "*") or "*").strip()
CORS_ALLOW_ALL_ORIGINS = _cors == "*"
_cors_origins = [] if CORS_ALLOW_ALL_ORIGINS else env_origins("API_CORS_ORIGINS")
CORS_ALLOWED_ORIGINS = [o for o in _cors_origins if "://*." not in o]
CORS_ALLOWED_ORIGIN_REGEXES = [
    "^" + re.escape(o).replace(re.escape("://*."), r"://([a-z0-9-]+\.)+") + "$"
    for o in _cors_origins
    if "://*." in o
]
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = (*default_cors_headers, "idempotency-key")
CORS_EXPOSE_HEADERS = ["Retry-After", "Idempotent-Replayed"]
CORS_PREFLIGHT_MAX_AGE = 86400

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env_str("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_redis_url("CACHE_URL"),
            # The cache holds the rate-limit counters, which let a request through when Redis does not
            # answer (booking.api.throttles): a dead or unreachable Redis costs a request half a second,
            # not the system's TCP connect timeout (minutes, where the host drops packets).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }

# Manage tokens are redacted from log lines (``config.logfilters``): on the loggers that write request paths
# (before any handler, so every handler sees the redacted line) and on the console handler for the rest.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_tokens": {"()": "config.logfilters.RedactTokens"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"]},
        # configuring django.server's filter replaces Django's own handler for it: the same one again
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
        # errors only, as Django's own: every 404 or 429 mailed, a bot at the rate limit flooded the inbox
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "loggers": {
        # Django's own console handler for "django" printed every line a second time (with DEBUG) beside the
        # root one: "django" keeps only the 500 e-mails to ADMINS and passes the rest up to the root
        "django": {"handlers": ["mail_admins"], "level": env_log_level("LOG_LEVEL", "INFO")},
        "django.request": {"filters": ["redact_tokens"]},
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["redact_tokens"],
            "level": "INFO",
            "propagate": False,
        },
    },
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
}

# the error reports mailed to ADMINS (and DEBUG's error page) without manage tokens
DEFAULT_EXCEPTION_REPORTER = "config.logfilters.RedactingExceptionReporter"

# Reps sign in on Baton's own login page (the admin's takes staff only: a rep needed staff status to connect a
# calendar, which the insights pages and outcome recording trusted). URL names, not paths: Django reverses
# them with the script prefix of a sub-path deployment (a literal path led outside Baton there).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "calendars:connections"

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
# HTTPS only (``check --deploy``'s W004/W008 could not be answered from the environment): HSTS for this
# many seconds, and plain-HTTP requests redirected (behind a proxy, with TRUST_X_FORWARDED_PROTO=1)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)

# --- Calendars: provider apps, endpoints (overridable for tests), sync cadence and bounds.
# Google and Microsoft are each enabled by setting both the client id and secret; one without the other fails.
GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID", "") or ""
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET", "") or ""
GOOGLE_AUTH_URI = env_str("GOOGLE_AUTH_URI", "https://accounts.google.com/o/oauth2/auth") or ""
GOOGLE_TOKEN_URI = env_str("GOOGLE_TOKEN_URI", "https://oauth2.googleapis.com/token") or ""
GOOGLE_REVOKE_URI = env_str("GOOGLE_REVOKE_URI", "https://oauth2.googleapis.com/revoke") or ""
GOOGLE_API_ENDPOINT = env_str("GOOGLE_API_ENDPOINT", "https://www.googleapis.com/calendar/v3/") or ""
MS_CLIENT_ID = env_str("MS_CLIENT_ID", "") or ""
MS_CLIENT_SECRET = env_str("MS_CLIENT_SECRET", "") or ""
MS_AUTHORITY = (env_str("MS_AUTHORITY", "https://login.microsoftonline.com/common") or "").rstrip("/")
# Authorities MSAL does not know (sovereign clouds, test servers) need instance discovery turned off.
MS_VALIDATE_AUTHORITY = env_bool("MS_VALIDATE_AUTHORITY", True)
MS_GRAPH_ENDPOINT = (env_str("MS_GRAPH_ENDPOINT", "https://graph.microsoft.com/v1.0") or "").rstrip("/")
for _name, _id, _secret in (
    ("GOOGLE", GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
    ("MS", MS_CLIENT_ID, MS_CLIENT_SECRET),
):
    if bool(_id) != bool(_secret):
        raise ImproperlyConfigured(f"{_name}_CLIENT_ID and {_name}_CLIENT_SECRET: set both or neither")
for _name, _url in (
    ("GOOGLE_AUTH_URI", GOOGLE_AUTH_URI),
    ("GOOGLE_TOKEN_URI", GOOGLE_TOKEN_URI),
    ("GOOGLE_REVOKE_URI", GOOGLE_REVOKE_URI),
    ("GOOGLE_API_ENDPOINT", GOOGLE_API_ENDPOINT),
    ("MS_GRAPH_ENDPOINT", MS_GRAPH_ENDPOINT),
):
    if not _url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{_name}: must be an http(s) URL, got {_url!r}")
if not MS_AUTHORITY.startswith("https://") or MS_AUTHORITY.count("/") < 3:
    raise ImproperlyConfigured(f"MS_AUTHORITY: must be https://host/tenant, got {MS_AUTHORITY!r}")
# Where providers deliver push notifications; defaults to BASE_URL. Push needs https unless forced on.
CALENDAR_WEBHOOK_BASE_URL = (env_str("CALENDAR_WEBHOOK_BASE_URL", BASE_URL) or "").rstrip("/")
CALENDAR_PUSH_ENABLED = env_bool("CALENDAR_PUSH_ENABLED", CALENDAR_WEBHOOK_BASE_URL.startswith("https://"))
if not CALENDAR_WEBHOOK_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"CALENDAR_WEBHOOK_BASE_URL: must be an http(s) URL, got {CALENDAR_WEBHOOK_BASE_URL!r}"
    )
# Busy times are kept for [now - 1 day, now + horizon]; the window rolls with a full resync once a week.
CALENDAR_SYNC_HORIZON_DAYS = env_int("CALENDAR_SYNC_HORIZON_DAYS", 180, minimum=14)
# Polling: an API calendar is re-synced when its last attempt is older than this (push makes it sooner).
CALENDAR_POLL_MINUTES = env_int("CALENDAR_POLL_MINUTES", 15, minimum=1)
# Days a removed synced busy interval is kept for the routing simulator's replays (calendars.BusyHistory).
BUSY_HISTORY_DAYS = env_int("BUSY_HISTORY_DAYS", 180, minimum=1)
CALENDAR_ICS_POLL_MINUTES = env_int("CALENDAR_ICS_POLL_MINUTES", 15, minimum=1)
# Push channels / subscriptions are renewed when they expire within this many hours.
CALENDAR_WATCH_RENEW_HOURS = env_int("CALENDAR_WATCH_RENEW_HOURS", 24, minimum=1)
CALENDAR_HTTP_TIMEOUT_SECONDS = env_int("CALENDAR_HTTP_TIMEOUT_SECONDS", 20, minimum=1)
CALENDAR_ICS_MAX_BYTES = env_int("CALENDAR_ICS_MAX_BYTES", 10_000_000, minimum=10_000)
# Recurring events expanded from one feed in the sync window (and 50 × as many rule steps): a feed whose
# rules could make more (FREQ=SECONDLY, say) is refused before expansion (calendars.providers.ics_cost).
CALENDAR_ICS_MAX_INSTANCES = env_int("CALENDAR_ICS_MAX_INSTANCES", 20_000, minimum=100)
# ICS URLs resolving to loopback/private addresses are refused (SSRF) unless this is on.
CALENDAR_ICS_ALLOW_PRIVATE_HOSTS = env_bool("CALENDAR_ICS_ALLOW_PRIVATE_HOSTS", False)
# Who is emailed when a calendar grant is revoked, and when a host deletes an upcoming meeting Baton wrote
# into their calendar (default: Django's ADMINS); a warning is always logged.
CALENDAR_ALERT_EMAILS = env_list("CALENDAR_ALERT_EMAILS", [])
if max(CALENDAR_POLL_MINUTES, CALENDAR_ICS_POLL_MINUTES) >= CALENDAR_STALENESS_MINUTES:
    raise ImproperlyConfigured(
        "CALENDAR_STALENESS_MINUTES: must exceed CALENDAR_POLL_MINUTES and CALENDAR_ICS_POLL_MINUTES, "
        "or every rep with a calendar is withheld between two polls"
    )
# Libraries that log request bodies or URLs at DEBUG (OAuth codes, ICS secret URLs) stay at INFO or above.
LOGGING.setdefault("loggers", {}).update(
    {
        name: {"level": "WARNING"}
        for name in (
            "oauthlib",
            "requests_oauthlib",
            "urllib3",
            "msal",
            "googleapiclient",
            "google_auth_httplib2",
        )
    }
)
if CELERY_TASK_ALWAYS_EAGER:
    # In-process, every e-mail of a booking and every periodic run of `make run` is a task run, and Celery
    # logged "Task … succeeded in …" at INFO for each: the console filled with them. Failures stay (ERROR).
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}

# --- Booking API: error rendering, client addresses behind proxies, live check, idempotency, outbox.
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "booking.api.errors.exception_handler"
# Reverse proxies in front of Baton whose X-Forwarded-For entries are trusted (0: use the socket address).
REST_FRAMEWORK["NUM_PROXIES"] = env_int("NUM_PROXIES", 0, minimum=0)
# How long the booking transaction waits for providers' live free/busy of the chosen host(s).
BOOKING_LIVE_CHECK_TIMEOUT_MS = env_int("BOOKING_LIVE_CHECK_TIMEOUT_MS", 2000, minimum=1)
BOOKING_IDEMPOTENCY_TTL_HOURS = env_int("BOOKING_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
BOOKING_OUTBOX_MAX_ATTEMPTS = env_int("BOOKING_OUTBOX_MAX_ATTEMPTS", 12, minimum=1)
BOOKING_OUTBOX_LEASE_SECONDS = env_int("BOOKING_OUTBOX_LEASE_SECONDS", 300, minimum=30)
# Seconds an SMTP socket operation may wait: without it a stalled mail server held an outbox delivery past its
# lease (the sweep then sent the e-mail again: the prospect got two) and its worker for good. Default 20 s, or
# a third of a shorter lease.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", min(20, BOOKING_OUTBOX_LEASE_SECONDS // 3), minimum=1)
if EMAIL_TIMEOUT * 3 > BOOKING_OUTBOX_LEASE_SECONDS:  # connect, send and quit may each wait that long
    raise ImproperlyConfigured(
        f"EMAIL_TIMEOUT ({EMAIL_TIMEOUT} s) must be at most a third of BOOKING_OUTBOX_LEASE_SECONDS "
        f"({BOOKING_OUTBOX_LEASE_SECONDS} s): a delivery must give up before another worker takes its message"
    )
# The sweep leaves fresh rows alone this long (their Celery task normally delivers them first).
BOOKING_OUTBOX_GRACE_SECONDS = env_int("BOOKING_OUTBOX_GRACE_SECONDS", 60, minimum=0)
# Days delivered and dead outbox messages (with the prospect's name, e-mail, answers) are kept.
BOOKING_OUTBOX_RETENTION_DAYS = env_int("BOOKING_OUTBOX_RETENTION_DAYS", 30, minimum=1)
if any(len(key) < 24 for key in INSTANT_ROUTE_API_KEYS):
    raise ImproperlyConfigured("INSTANT_ROUTE_API_KEYS: every key needs at least 24 characters")
for _name, _rate in (
    ("BOOKING_RATE_LIMIT", BOOKING_RATE_LIMIT),
    ("API_READ_RATE_LIMIT", API_READ_RATE_LIMIT),
):
    # at least 1, as LOGIN_RATE_LIMIT: "0/min" (meant as "no limit") answered every request with a 429
    if _rate and not re.fullmatch(r"[1-9]\d*/(s|sec|m|min|h|hour|d|day)", _rate):
        _zero = " (at least 1; empty turns the limit off)" if re.match(r"0+/", _rate) else ""
        raise ImproperlyConfigured(f"{_name}: expected e.g. 30/min, got {_rate!r}{_zero}")
windowed_rate("LOGIN_RATE_LIMIT", LOGIN_RATE_LIMIT)  # refused at start-up, read again by config/login.py

# --- Leads (docs/routing-rules.md; read through ``leads.conf``).
BATON_ROUTE_MAX_AGE_SECONDS = env_int("BATON_ROUTE_MAX_AGE_SECONDS", 7200, minimum=60)  # route tokens
BATON_OWNER_BACKEND = env_str("BATON_OWNER_BACKEND", "leads.owners.AccountOwnerBackend") or ""
BATON_LEARN_OWNERS = env_bool("BATON_LEARN_OWNERS", True)
BATON_NURTURE_WEBHOOK_URL = env_str("BATON_NURTURE_WEBHOOK_URL", "") or ""
if BATON_NURTURE_WEBHOOK_URL and (
    not BATON_NURTURE_WEBHOOK_URL.startswith(("http://", "https://"))
    or not urlsplit(BATON_NURTURE_WEBHOOK_URL).hostname
):
    raise ImproperlyConfigured(
        f"BATON_NURTURE_WEBHOOK_URL: expected an http(s) URL, got {BATON_NURTURE_WEBHOOK_URL!r}"
    )
if not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", BATON_OWNER_BACKEND):
    raise ImproperlyConfigured(
        f"BATON_OWNER_BACKEND: expected a dotted path to a class, got {BATON_OWNER_BACKEND!r}"
    )
