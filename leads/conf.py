"""Settings of the leads app (all optional; read at call time so tests can override them).

* ``BATON_ROUTE_MAX_AGE_SECONDS`` (default 7200): how long a route token from the route API is valid.
* ``BATON_OWNER_BACKEND`` (default ``leads.owners.AccountOwnerBackend``): dotted path of the owner lookup
  (imported by the system check ``leads.checks``, ``baton.E001``).
* ``BATON_LEARN_OWNERS`` (default True): the built-in backend also learns owners from booking history.
* ``BATON_NURTURE_WEBHOOK_URL`` (default ""): disqualified leads are POSTed here by the outbox.
"""

from __future__ import annotations

from django.conf import settings


def route_max_age() -> int:
    return int(getattr(settings, "BATON_ROUTE_MAX_AGE_SECONDS", 7200))


def owner_backend_path() -> str:
    return getattr(settings, "BATON_OWNER_BACKEND", "leads.owners.AccountOwnerBackend")


def learn_owners() -> bool:
    return bool(getattr(settings, "BATON_LEARN_OWNERS", True))


def nurture_webhook_url() -> str:
    return getattr(settings, "BATON_NURTURE_WEBHOOK_URL", "")
