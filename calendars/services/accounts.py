"""Which connection a connect is of (``connections.connection_create``).

A Google / Microsoft account is known by its lasting id (``account_key``) when it has one, otherwise by
its address; an ICS feed by its secret URL among the rep's feeds. Connects of one account take turns until
commit, and an account another rep has connected is refused (``AccountInUse``).
"""

from __future__ import annotations

import hashlib

from django.db import connection as db
from django.db.models import Q

from calendars.crypto import decrypt_secrets
from calendars.errors import AccountInUse, CalendarError
from calendars.models import CalendarConnection
from routing.models import Rep

Provider = CalendarConnection.Provider
ACCOUNT_LOCK_CLASS = 0x43414C41  # "CALA": advisory locks of calendar accounts (see _account_lock)
KEY_LENGTH = CalendarConnection._meta.get_field("account_key").max_length


def account_key(provider: str, secrets: dict) -> str:
    """The account's lasting id: Microsoft's ``home_account_id`` (``oid.tid``), which a new sign-in name
    keeps. Google's flow has no id_token (no ``openid`` scope, so no ``sub``): "" (known by its address)."""
    home = secrets.get("home_account_id") if provider == Provider.MICROSOFT else ""
    return home if isinstance(home, str) else ""


def connection_find(
    *, rep: Rep, provider: str, secrets: dict, account_email: str
) -> CalendarConnection | None:
    """The rep's connection of the account (or feed) being connected; None: a new one. Holds the account's
    lock until commit. Raises ``AccountInUse`` when another rep has connected the account."""
    if provider == Provider.ICS:  # the same secret feed added again (a double click): one connection
        _account_lock(provider, f"rep-{rep.pk}")  # the rep's feeds: another add waits for this one's commit
        feeds = CalendarConnection.objects.filter(rep=rep, provider=Provider.ICS)
        return next((c for c in feeds if _feed_url(c) == secrets.get("url")), None)
    key = account_key(provider, secrets)
    _account_lock(provider, account_email)
    if key:  # always after the address's: two connects cannot each hold what the other waits for
        _account_lock(provider, f"key:{key}")
        keys_fill()
    by_address = Q(account_email__iexact=account_email)
    match = Q(account_key=key) | (Q(account_key="") & by_address) if key else by_address
    same_account = CalendarConnection.objects.filter(match, provider=provider)
    if (account_email or key) and same_account.exclude(rep=rep).exists():
        label = Provider(provider).label
        raise AccountInUse(
            f"The {label} account {account_email} is already connected by another rep. Sign in to your "
            "own account, or ask them (or an admin) to disconnect it first."
        )
    mine = same_account.filter(rep=rep).order_by("pk")
    return (mine.filter(account_key=key).first() if key else None) or mine.first()


def keys_fill() -> None:
    """Give Microsoft connections stored without a key the ``home_account_id`` kept in their credentials.
    Migration 0017 leaves a row keyless when its job cannot read it (no ``TOKEN_ENCRYPTION_KEYS`` in the
    migrate job's environment); matched by its address alone, it would be taken over by another account
    under that address (a personal one beside the work one), and not found by its account after a rename.
    The app has the keys: a row read here is known by its key from now on; one still unreadable (a key
    retired too early) stays keyless, matched by its address as before. In ``pk`` order: two connects
    filling the same rows wait for each other, never each for the other."""
    rows = CalendarConnection.objects.filter(provider=Provider.MICROSOFT, account_key="")
    rows = rows.exclude(secret_blob="")
    for pk, blob in list(rows.order_by("pk").values_list("pk", "secret_blob")):
        try:
            secrets = decrypt_secrets(blob)
        except (CalendarError, ValueError):  # unreadable, or not the JSON stored
            continue
        key = account_key(Provider.MICROSOFT, secrets) if isinstance(secrets, dict) else ""
        if 0 < len(key) <= KEY_LENGTH:
            rows.filter(pk=pk).update(account_key=key)


def _account_lock(provider: str, account_email: str) -> None:
    """Connects of the same account take turns until commit (a PostgreSQL transaction-scoped advisory lock),
    so two reps connecting one account at once cannot both find it free, nor one rep's double callback store
    it twice. An ICS feed's secret URL is looked for among the rep's feeds, so ``account_email`` is then the
    rep (``rep-<id>``): the rep's feed adds take turns. On SQLite, ``BEGIN IMMEDIATE`` already serialises
    the transactions."""
    xact_lock(ACCOUNT_LOCK_CLASS, f"{provider}:{account_email.lower()}")


def xact_lock(classid: int, name: str) -> None:
    """Wait for, then hold until commit, the PostgreSQL advisory lock ``(classid, hash of name)``; nothing
    on SQLite. Two names sharing a hash only wait for each other."""
    if db.vendor != "postgresql":
        return
    digest = hashlib.sha256(name.encode()).digest()
    with db.cursor() as cursor:
        key = int.from_bytes(digest[:4], "big", signed=True)
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [classid, key])


def _feed_url(connection: CalendarConnection) -> str | None:
    """A stored feed's URL; None when its secret cannot be read (a key retired too early): that connection
    is no match, and adding another feed is not refused for it."""
    try:
        return decrypt_secrets(connection.secret_blob).get("url")
    except CalendarError:
        return None
