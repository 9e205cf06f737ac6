"""Idempotency keys for booking creation.

The first request with a key inserts an ``IdempotencyKey`` row inside the booking's transaction (unique
``key_hash``), so concurrent duplicates block on the insert until the first commits, then fail and replay
its stored response. Only successful responses (201) are stored: a failed request leaves no row and may be
retried with the same key. Keys expire ``BOOKING_IDEMPOTENCY_TTL_HOURS`` after first use.

On PostgreSQL, requests with one key also take turns from before their planning (``turn``): a duplicate
that arrives while the first is under way waits for it and replays its response, instead of reading the
pool and asking calendar providers for a booking it will not make.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from booking.errors import IdempotencyConflict, InvalidInput
from booking.models import IdempotencyKey
from booking.services import locking
from routing import sqlrows

MAX_KEY_LENGTH = 255
# Advisory-lock key space of idempotency keys: the two-int form (PostgreSQL keeps it apart from the
# one-bigint form of the rep locks), "KEYS" and 32 bits of the key's hash.
KEY_LOCK_CLASS = 0x4B455953


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not (1 <= len(key) <= MAX_KEY_LENGTH) or not key.isprintable():
        raise InvalidInput({"Idempotency-Key": [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]})
    return key


def key_hash(key: str) -> str:
    return hashlib.sha256(b"lookup:" + key.encode()).hexdigest()


def fingerprint(data: Any) -> str:
    """SHA-256 of the canonical JSON of a request (what must match for a replay)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def key_lock(key: str) -> tuple[int, int]:
    """The two 32-bit halves of the key's advisory lock (two keys sharing a hash half only wait for each
    other, nothing else)."""
    half = int.from_bytes(hashlib.sha256(b"lock:" + key.encode()).digest()[:4], "big", signed=True)
    return KEY_LOCK_CLASS, half


@contextmanager
def turn(key: str | None) -> Iterator[bool | None]:
    """On PostgreSQL with a key: open the booking's durable transaction and take the key's transaction-scoped
    advisory lock first, so that requests with the same key run one after the other from before the pool is
    read until the booking commits (transaction-scoped, so it holds behind PgBouncer's transaction pooling
    too, and ends with the transaction whatever happens). Taken at once when free (one statement), otherwise
    waited for at most ``BOOKING_LOCK_TIMEOUT_MS`` (then the lock-timeout error, i.e. ``TryAgain``). Yields
    whether it waited (the other request may have stored its response meanwhile); the caller books inside
    this transaction. Elsewhere, or without a key, yields ``None`` and opens nothing: the caller opens its
    own transaction, and the key row's unique insert there lets one request through."""
    if not key or sqlrows.vendor() != "postgresql" or not locking.LOCKS_ENABLED:
        yield None
        return
    classid, objid = key_lock(key)
    with transaction.atomic(durable=True):
        [(free,)] = sqlrows.rows("SELECT pg_try_advisory_xact_lock(%s, %s)", [classid, objid])
        if not free:
            wait = ("SELECT count(pg_advisory_xact_lock(%s, %s))", [classid, objid])
            sqlrows.batch([locking.timeout_statement(), wait])
        yield not free


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(b"seal:" + settings.SECRET_KEY.encode() + b"\0" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def begin(key: str, request_hash: str, *, now: datetime) -> IdempotencyKey:
    """Claim ``key`` for this request (inside the booking transaction). Raises IntegrityError if taken."""
    IdempotencyKey.objects.filter(key_hash=key_hash(key), expires_at__lte=now).delete()
    ttl = timedelta(hours=settings.BOOKING_IDEMPOTENCY_TTL_HOURS)
    return IdempotencyKey.objects.create(
        key_hash=key_hash(key), request_hash=request_hash, created_at=now, expires_at=now + ttl
    )


def finish(row: IdempotencyKey, key: str, *, booking_id: int, status_code: int, body: dict) -> None:
    """Store the response for ``key`` (inside the booking transaction)."""
    row.booking_id = booking_id
    row.status_code = status_code
    row.sealed_response = _seal(key, body)
    row.save(update_fields=["booking", "status_code", "sealed_response"])


def finish_statement(
    row: IdempotencyKey, key: str, *, booking_id: int, status_code: int, body: dict
) -> tuple[str, list]:
    """``finish`` as a statement, for a caller that sends it with the booking's rows (one round trip under
    the rep locks: ``routing.sqlwrites.insert_many``'s ``then``; PostgreSQL, or SQLite ≥ 3.35 for its
    ``RETURNING``). Updates ``row`` as it will be stored."""
    row.booking_id = booking_id
    row.status_code = status_code
    row.sealed_response = _seal(key, body)
    opts, quote = IdempotencyKey._meta, connection.ops.quote_name
    columns = [opts.get_field(name).column for name in ("booking", "status_code", "sealed_response")]
    sets = ", ".join(f"{quote(column)} = %s" for column in columns)
    pk = quote(opts.pk.column)
    return (
        f"UPDATE {quote(opts.db_table)} SET {sets} WHERE {pk} = %s RETURNING {pk}",
        [row.booking_id, row.status_code, row.sealed_response, row.pk],
    )


def _seal(key: str, body: dict) -> str:
    return _fernet(key).encrypt(json.dumps(body, cls=DjangoJSONEncoder).encode()).decode()


def replay(key: str, request_hash: str, *, now: datetime) -> tuple[int, dict] | None:
    """The stored ``(status, body)`` for ``key``, ``None`` if there is none (or it expired); raises
    ``IdempotencyConflict`` when the key was used with a different request."""
    row = IdempotencyKey.objects.filter(key_hash=key_hash(key), expires_at__gt=now).first()
    if row is None or not row.sealed_response:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict()
    try:
        body = json.loads(_fernet(key).decrypt(row.sealed_response.encode()))
    except InvalidToken:  # SECRET_KEY rotated: the stored response cannot be read any more
        return None
    return row.status_code, body


def purge_expired(*, now: datetime) -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
    return deleted
