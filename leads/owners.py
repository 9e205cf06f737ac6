"""Account-owner lookup behind a small pluggable interface (``BATON_OWNER_BACKEND``).

A backend is any class with ``owner_for(*, email, domain) -> OwnerMatch | None``; a CRM backend (Salesforce,
HubSpot) can be added without touching the router. The built-in ``AccountOwnerBackend`` asks, in order:

1. the ``Account`` table: the account of the e-mail's domain (in its IDNA ASCII form, as imported, else in
   its Unicode form), if it has an owner (never for free-mail);
2. with ``BATON_LEARN_OWNERS`` (default on), Baton's own booking history: the current host, if still active,
   of the latest meeting that took place (``held_hosts``) with the same e-mail address, then — unless the
   domain is free-mail — with anyone at the same company domain.

``owner_lookup`` is what the router calls: a backend that raises (a CRM that timed out) is logged and
recorded as "owner lookup failed: …", and the rule's no-owner path routes the lead normally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from django.db import DatabaseError
from django.db.models import Q, Value
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.utils.module_loading import import_string

from leads import conf
from leads.rules_core import is_free_mail, unicode_domain

logger = logging.getLogger("leads")
NO_OWNER = "no owner found"


@dataclass(frozen=True)
class OwnerMatch:
    rep_id: int
    source: str  # "account", "history_email", "history_domain" or a CRM's name
    detail: str = ""


class OwnerBackend(Protocol):
    def owner_for(self, *, email: str, domain: str) -> OwnerMatch | None: ...


def held_hosts():
    """The active host rows of meetings that took place: completed (an outcome recorded as held, won, lost
    …). A booking proves nothing by itself, to come or past: anyone can type nobody@bigcorp.io into the
    booking form, at a time only one rep is free, and not show up; the host then owned every real
    bigcorp.io lead. Only those of reps still active: a rep who left (deactivated) owns nothing, as an
    ``Account`` of theirs does not, and the history is asked on to whoever else met the prospect or their
    company (before, the last meeting's departed host was the answer, the route fell back to the whole pool
    and a colleague who met the same company was never asked). Shared by the owner backend and
    ``learn_account_owners``."""
    from booking.models import Booking, BookingHost

    return BookingHost.objects.filter(active=True, rep__active=True, booking__status=Booking.Status.COMPLETED)


def _history_owner(prospect: Q) -> int | None:
    """The host of the latest meeting that took place (``held_hosts``) with the prospect, or their domain
    (``prospect``: a condition on the host rows, e.g. on ``prospect_email_key("booking__")``)."""
    host = (
        held_hosts()
        .filter(prospect)
        .order_by("-booking__start", "-pk")
        .values_list("rep_id", flat=True)
        .first()
    )
    return host


class AccountOwnerBackend:
    """``domain`` is the normalised e-mail domain (``rules_core.email_domain``: an internationalised one in
    its ASCII form, as accounts are imported); its Unicode form is asked too, for an account saved with it
    and for bookings whose address was stored as the prospect typed it."""

    def owner_for(self, *, email: str, domain: str) -> OwnerMatch | None:
        from booking.models import prospect_domain_key, prospect_email_key
        from leads.models import Account

        free = is_free_mail(domain)
        forms = {domain, unicode_domain(domain)}
        if not free:
            found = Account.objects.filter(domain__in=forms, owner__isnull=False, owner__active=True)
            accounts = {a.domain: a for a in found}
            account = accounts.get(domain) or accounts.get(unicode_domain(domain))
            if account is not None:
                return OwnerMatch(account.owner_id, "account", f"account {account.domain}")
        if not conf.learn_owners():
            return None
        # equalities on the expressions Booking's indexes are built on (an ``iendswith`` on the domain, or
        # an ``iexact`` no index matches, read every booking for every new company's lead)
        rep_id = _history_owner(Q(Exact(prospect_email_key("booking__"), Upper(Value(email)))))
        if rep_id is not None:
            return OwnerMatch(rep_id, "history_email", f"earlier booking by {email}")
        if not free:
            at_domain = Q()
            for form in sorted(forms):
                at_domain |= Q(Exact(prospect_domain_key("booking__"), Upper(Value(form))))
            rep_id = _history_owner(at_domain)
            if rep_id is not None:
                return OwnerMatch(rep_id, "history_domain", f"earlier booking from {domain}")
        return None


def owner_backend() -> OwnerBackend:
    return import_string(conf.owner_backend_path())()


def owner_lookup(*, email: str, domain: str) -> tuple[OwnerMatch | None, str]:
    """The backend's owner of the lead, or None and why (``NO_OWNER``, or "owner lookup failed: …").

    A CRM backend is a network call that fails now and then; its error answered the route API with a 500 and
    the prospect could not book at all, although the rule says what to do without an owner. A database error
    is not caught: it is Baton's own (and inside a transaction it has to end it)."""
    backend = owner_backend()  # a wrong BATON_OWNER_BACKEND path is a configuration error: it raises
    try:
        match = backend.owner_for(email=email, domain=domain)
    except DatabaseError:
        raise
    except Exception as exc:
        logger.warning("owner lookup failed (%s) for domain %s", type(exc).__name__, domain, exc_info=True)
        return None, f"owner lookup failed: {_one_line(f'{type(exc).__name__}: {exc}')}"
    return match, NO_OWNER


def _one_line(text: str, limit: int = 200) -> str:
    """``text`` for the lead's decision record: printable (no NUL, which a PostgreSQL JSON column refuses,
    no lone surrogate), on one line, at most ``limit`` characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
