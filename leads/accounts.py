"""Accounts: CSV import (all rows checked first, then one transaction) and learning owners from history.

CSV columns (header required): ``domain`` (required), ``name``, ``crm_id``, ``owner_email`` (a rep's e-mail,
blank: no owner). Errors name the row and column, e.g. ``row 3.owner_email: unknown rep x@y``; with any error
nothing is written. A domain is stored as leads' e-mail domains are compared (``rules_core.normalize_domain``:
``Bücher.de`` is ``xn--bcher-kva.de``), whichever form the CRM exports.
"""

from __future__ import annotations

import csv
import re
from collections import Counter

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leads.models import Account
from leads.rules_core import email_domain, is_free_mail, normalize_domain, unicode_domain
from routing.models import Rep

# a host name in ASCII; the top-level label may be an internationalised one (``xn--p1ai``: .рф)
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)
COLUMNS = ("domain", "name", "crm_id", "owner_email")


def account_domain_problem(domain: str) -> str | None:
    """Why ``domain`` (normalised: ``normalize_domain``) cannot be an account's, or None. Shared by the
    importer and the admin's form."""
    if not _DOMAIN.match(domain):
        return f"{domain!r} is not a domain"
    if is_free_mail(domain):
        return f"{domain} is a free-mail domain, not a company"
    return None


class AccountImportError(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _rows(handle) -> list[dict]:
    reader = csv.DictReader(handle)
    missing = [c for c in ("domain",) if c not in (reader.fieldnames or [])]
    if missing:
        raise AccountImportError([f"header: missing column {', '.join(missing)}"])
    unknown = sorted(set(reader.fieldnames or []) - set(COLUMNS))
    if unknown:
        raise AccountImportError([f"header: unknown column {', '.join(unknown)}"])
    try:
        return list(reader)
    except csv.Error as exc:  # e.g. a field over csv's 128 KiB limit
        raise AccountImportError([f"the CSV cannot be read: {exc}"]) from None


def accounts_import(handle) -> dict[str, int]:
    """Create or update accounts from CSV text ``handle``; returns created/updated/unchanged counts."""
    rows = _rows(handle)
    reps = {email.lower(): pk for pk, email in Rep.objects.values_list("pk", "email")}
    errors, parsed, seen = [], [], {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        where = f"row {number}"
        domain = normalize_domain(row.get("domain") or "")
        owner_email = (row.get("owner_email") or "").strip().lower()
        problem = account_domain_problem(domain)
        if problem:
            errors.append(f"{where}.domain: {problem}")
        elif domain in seen:
            errors.append(f"{where}.domain: {domain} already given in row {seen[domain]}")
        else:
            seen[domain] = number
        if owner_email and owner_email not in reps:
            errors.append(f"{where}.owner_email: unknown rep {owner_email}")
        name, crm_id = (row.get("name") or "").strip(), (row.get("crm_id") or "").strip()
        if len(name) > 200:
            errors.append(f"{where}.name: at most 200 characters")
        if len(crm_id) > 100:
            errors.append(f"{where}.crm_id: at most 100 characters")
        for column, value in (("name", name), ("crm_id", crm_id)):  # domain and owner_email are matched
            if "\x00" in value:  # PostgreSQL stores no NUL in text
                errors.append(f"{where}.{column}: contains a NUL character")
        parsed.append((domain, {"name": name, "crm_id": crm_id, "owner_id": reps.get(owner_email)}))
    if errors:
        raise AccountImportError(errors)
    with transaction.atomic():
        forms = set(seen) | {unicode_domain(domain) for domain in seen}
        existing = _by_normal_domain(Account.objects.select_for_update().filter(domain__in=forms))
        return _write(parsed, existing)


_BATCH = 1000  # rows a statement: an import of 50,000 accounts is some 50 statements, not 50,000
_UPDATED = ("domain", "name", "crm_id", "owner", "learned", "updated_at")


def _write(parsed: list[tuple[str, dict]], existing: dict[str, Account]) -> dict[str, int]:
    """Write the checked rows ``parsed`` (normalised domain, values) in batches: new accounts created,
    changed ones (``existing``, by normalised domain) updated: stored in ASCII, no longer ``learned``."""
    counts = Counter(created=0, updated=0, unchanged=0)
    created, updated, now = [], [], timezone.now()
    for domain, values in parsed:
        account = existing.get(domain)
        if account is None:
            created.append(Account(domain=domain, **values))
        elif any(getattr(account, k) != v for k, v in values.items()):
            for key, value in {**values, "domain": domain, "learned": False, "updated_at": now}.items():
                setattr(account, key, value)
            updated.append(account)
        else:
            counts["unchanged"] += 1
    Account.objects.bulk_create(created, batch_size=_BATCH)
    Account.objects.bulk_update(updated, _UPDATED, batch_size=_BATCH)
    counts.update(created=len(created), updated=len(updated))
    return dict(counts)


def _by_normal_domain(accounts) -> dict[str, Account]:
    """``accounts`` by their normalised domain. A row stored in Unicode before domains were normalised
    (``bücher.de``; migration leads.0004 converts them) is found under ``xn--bcher-kva.de``; should both
    forms be stored, the ASCII row is the one (as ``owners.AccountOwnerBackend`` reads them)."""
    found: dict[str, Account] = {}
    for account in sorted(accounts, key=lambda a: a.domain != normalize_domain(a.domain)):
        found.setdefault(normalize_domain(account.domain), account)
    return found


def accounts_learn_owners() -> int:
    """Give each company domain without an owner the rep who hosted most of its meetings that took place
    (``owners.held_hosts``: reps still active; ties: the most recent). Creates accounts as needed, marked
    ``learned``. Returns the accounts changed.

    An account whose learned owner has left (deactivated) counts as unowned and is learned again: the
    lookup skips it, and it kept the departed rep for good. One whose owner was imported (not ``learned``)
    is left alone even so: the CRM's word stands until it is re-imported."""
    from leads.owners import held_hosts

    hosts = held_hosts().values_list("booking__prospect_email", "rep_id", "booking__start")
    tally: dict[str, Counter] = {}
    latest: dict[tuple[str, int], object] = {}
    for email, rep_id, start in hosts:
        domain = email_domain(email)
        if not domain or account_domain_problem(domain):  # free mail; one no account holds (over 253)
            continue
        tally.setdefault(domain, Counter())[rep_id] += 1
        latest[(domain, rep_id)] = max(start, latest.get((domain, rep_id), start))
    changed = 0
    with transaction.atomic():
        # in normalised form: an owned account stored in Unicode (``bücher.de``) owns ``xn--bcher-kva.de``
        kept = Q(owner__active=True) | Q(owner__isnull=False, learned=False)
        owned = Account.objects.filter(kept).values_list("domain", flat=True)
        owned = {normalize_domain(domain) for domain in owned}
        vacant = Q(owner__isnull=True) | Q(owner__active=False, learned=True)  # not ``kept``
        unowned = _by_normal_domain(Account.objects.filter(vacant).only("pk", "domain"))
        for domain, counter in tally.items():
            if domain in owned:
                continue
            rep_id = max(counter, key=lambda r: (counter[r], latest[(domain, r)]))
            account = unowned.get(domain)
            if account is None:
                Account.objects.create(domain=domain, owner_id=rep_id, learned=True)
            else:  # its row, whichever form it is stored in
                Account.objects.filter(pk=account.pk).update(
                    owner_id=rep_id, learned=True, updated_at=timezone.now()
                )
            changed += 1
    return changed
