"""Idempotency keys for booking creation (and for the instant route, ``leads.instant_keys``).

The first request with a key inserts an ``IdempotencyKey`` row inside the booking's transaction (unique
``key_hash``), so concurrent duplicates block on the insert until the first commits, then fail and replay
its stored response. Only successful responses (201) are stored: a failed request leaves no row and may be
retried with the same key. Keys expire ``BOOKING_IDEMPOTENCY_TTL_HOURS`` after first use.

On PostgreSQL, requests with one key also take turns from before their planning (``turn``): a duplicate
that arrives while the first is under way waits for it and replays its response, instead of reading the
pool and asking calendar providers for a booking it will not make. There the key's lock, not its row,
keeps duplicates out, so the row goes in with the booking's own rows, its response in it, in the
booking's last round trip (``response_writes``); elsewhere the row is claimed first (``begin``) and the
response stored into it at the end.

Another endpoint's keys share the table, the locks and the purge in a key space of their own (``scoped``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction

from booking.errors import IdempotencyConflict, InvalidInput
from booking.models import IdempotencyKey
from booking.services import locking
from routing import sqlrows, sqlwrites

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


def scoped(key: str | None, scope: str) -> str | None:
    """``key`` (checked by ``check_key``) in the key space of another endpoint than booking creation (e.g.
    the instant route's): its hash, lock and seal differ from those of a booking with the same key, so a
    client that uses one key on both gets each request's own answer. A booking's key is printable, so the
    NUL after the scope keeps the spaces apart; every function here takes the scoped key as a key."""
    return None if key is None else f"{scope}\0{key}"


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


@dataclass(frozen=True)
class Turn:
    """What ``turn`` found: whether it opened the booking's durable transaction (book inside it), and the
    response stored for the key (replay it)."""

    opened: bool
    stored: tuple[int, dict] | None


@contextmanager
def turn(key: str | None, request_hash: str, *, now: datetime) -> Iterator[Turn]:
    """On PostgreSQL with a key: open the booking's durable transaction and take the key's transaction-scoped
    advisory lock first, so that requests with the same key run one after the other from before the pool is
    read until the booking commits (transaction-scoped, so it holds behind PgBouncer's transaction pooling
    too, and ends with the transaction whatever happens). Taken at once when free, otherwise waited for at
    most ``BOOKING_LOCK_TIMEOUT_MS`` (then the lock-timeout error, i.e. ``TryAgain``); the response stored
    for the key is read in the same round trip, after the lock (``replay``: a duplicate of a request that
    finished, or that finished while this one waited). The first statement also sets the transaction's
    ``lock_timeout`` (``try_statement``), so no read of the booking waits longer for a lock. Elsewhere, or
    without a key, it opens nothing (the caller opens its own transaction, and the key row's unique insert
    there lets one request through) and looks the stored response up on its own. Raises
    ``IdempotencyConflict`` as ``replay`` does."""
    if not key:
        yield Turn(False, None)
        return
    if sqlrows.vendor() != "postgresql" or not locking.LOCKS_ENABLED:
        yield Turn(False, replay(key, request_hash, now=now))
        return
    classid, objid = key_lock(key)
    stored = stored_statement(key, now=now)
    with transaction.atomic(durable=True):
        # the transaction's lock timeout is set in the same statement, ahead of every read that could wait
        # for a lock (a migration's ``ALTER TABLE`` holding one of the planning's tables: ``TryAgain`` after
        # BOOKING_LOCK_TIMEOUT_MS, not a worker held as long as the lock lasts)
        [(free, _)], found = sqlrows.batch([try_statement(classid, objid), stored])
        if not free:
            wait = ("SELECT count(pg_advisory_xact_lock(%s, %s))", [classid, objid])
            _, found = sqlrows.batch([wait, stored])
        yield Turn(True, replay(key, request_hash, now=now, found=found))


def try_statement(classid: int, objid: int) -> tuple[str, list]:
    """The key's lock if it is free, and ``locking.timeout_statement``'s ``lock_timeout`` for the rest of
    the transaction, in one statement: the transaction's first (the lock's answer is its first column)."""
    sql, params = locking.timeout_statement()
    return (
        "SELECT pg_try_advisory_xact_lock(%s, %s), " + sql.removeprefix("SELECT "),
        [classid, objid, *params],
    )


def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(b"seal:" + settings.SECRET_KEY.encode() + b"\0" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


@dataclass(frozen=True)
class Claim:
    """A booking request's key: ``row`` is its row when ``begin`` claimed it (the response then goes into
    it), None when the key's ``turn`` holds the key's lock (the row goes in with the response)."""

    key: str
    request_hash: str
    row: IdempotencyKey | None = None


def _row(key: str, request_hash: str, *, now: datetime) -> IdempotencyKey:
    ttl = timedelta(hours=settings.BOOKING_IDEMPOTENCY_TTL_HOURS)
    return IdempotencyKey(
        key_hash=key_hash(key), request_hash=request_hash, created_at=now, expires_at=now + ttl
    )


def _expired_statement(row: IdempotencyKey, *, now: datetime) -> tuple[str, list]:
    """Deletes the key's expired row, which would refuse ``row`` (``key_hash`` is unique)."""
    sql = "DELETE FROM booking_idempotencykey WHERE key_hash = %s AND expires_at <= %s"
    return sqlwrites.returning(sql, "id"), [row.key_hash, sqlrows.at(now)]


def begin(key: str, request_hash: str, *, now: datetime) -> IdempotencyKey:
    """Claim ``key`` for this request (inside the booking transaction) where no ``turn`` holds its lock: an
    expired row of the key is deleted and the new one inserted in one round trip on PostgreSQL. Raises
    IntegrityError if the key is taken."""
    row = _row(key, request_hash, now=now)
    sqlwrites.insert_many([[row]], first=[_expired_statement(row, now=now)])
    return row


def response_writes(
    claim: Claim, *, booking_id: int | None, status_code: int, body: dict, now: datetime
) -> tuple[list[tuple[str, list]], list[IdempotencyKey], list[tuple[str, list]]]:
    """What stores the response for the claim's key, inside the booking transaction, for a caller that
    sends it with the booking's rows (``routing.sqlwrites.insert_many``: one round trip under the rep locks
    on PostgreSQL): statements before the rows, rows to insert with them, statements after. Under the
    key's ``turn``: the expired row out, the key's row in, response and all; after ``begin``: the claimed
    row updated (``finish_statement``)."""
    if claim.row is not None:
        update = finish_statement(
            claim.row, claim.key, booking_id=booking_id, status_code=status_code, body=body
        )
        return [], [], [update]
    row = _row(claim.key, claim.request_hash, now=now)
    row.booking_id, row.status_code, row.sealed_response = booking_id, status_code, _seal(claim.key, body)
    return [_expired_statement(row, now=now)], [row], []


def is_taken(exc: IntegrityError) -> bool:
    """The key's row was refused: the key has a live row (``key_hash`` is unique; PostgreSQL's message names
    the constraint ``<table>_key_hash_key``, SQLite's the column ``<table>.key_hash``)."""
    text = str(exc)
    return IdempotencyKey._meta.db_table in text and "key_hash" in text


def finish_statement(
    row: IdempotencyKey, key: str, *, booking_id: int | None, status_code: int, body: dict
) -> tuple[str, list]:
    """The statement that stores the response for ``key`` in ``row`` (claimed by ``begin``), inside the
    booking transaction (``response_writes``). Updates ``row`` as it will be stored."""
    row.booking_id = booking_id
    row.status_code = status_code
    row.sealed_response = _seal(key, body)
    opts, quote = IdempotencyKey._meta, connection.ops.quote_name
    columns = [opts.get_field(name).column for name in ("booking", "status_code", "sealed_response")]
    sets = ", ".join(f"{quote(column)} = %s" for column in columns)
    pk = quote(opts.pk.column)
    return (
        sqlwrites.returning(f"UPDATE {quote(opts.db_table)} SET {sets} WHERE {pk} = %s", pk),
        [row.booking_id, row.status_code, row.sealed_response, row.pk],
    )


def _seal(key: str, body: dict) -> str:
    return _fernet(key).encrypt(json.dumps(body, cls=DjangoJSONEncoder).encode()).decode()


# The response stored for a key (one row at most: ``key_hash`` is unique).
STORED_SQL = (
    "SELECT request_hash, status_code, sealed_response FROM booking_idempotencykey "
    "WHERE key_hash = %s AND expires_at > %s"
)


def stored_statement(key: str, *, now: datetime) -> tuple[str, list]:
    """``replay``'s read as a statement, for a caller that sends it with others (``turn``)."""
    return STORED_SQL, [key_hash(key), sqlrows.at(now)]


def replay(key: str, request_hash: str, *, now: datetime, found=None) -> tuple[int, dict] | None:
    """The stored ``(status, body)`` for ``key``, ``None`` if there is none (or it expired); raises
    ``IdempotencyConflict`` when the key was used with a different request. ``found``: the rows of
    ``stored_statement``, when the caller has read them already."""
    if found is None:
        found = sqlrows.rows(*stored_statement(key, now=now))
    if not found or not found[0][2]:
        return None
    stored_hash, status_code, sealed = found[0]
    if stored_hash != request_hash:
        raise IdempotencyConflict()
    try:
        body = json.loads(_fernet(key).decrypt(sealed.encode()))
    except InvalidToken:  # SECRET_KEY rotated: the stored response cannot be read any more
        return None
    return status_code, body


def replay_as_first_sent(
    key: str | None, request_hashes: Callable[[], Iterable[str]], *, now: datetime
) -> tuple[int, dict] | None:
    """The stored ``(status, body)`` for ``key`` (checked, and scoped for another endpoint) when its request
    is one of ``request_hashes()``, for a retry its endpoint refuses now although the first request was
    answered: an admin deactivated the meeting type meanwhile or changed its questions. ``request_hashes``
    (the request's hash each way it may have been validated when it was first sent) is called only when a
    response is stored. None when nothing is stored for the key, not for such a request (no
    ``IdempotencyConflict``: the caller refuses a different request as it did), or it cannot be read. Only
    such refused requests read the key's row on their own; the endpoints' own requests replay in their
    key's ``turn``."""
    found = sqlrows.rows(*stored_statement(key, now=now)) if key else None
    if not found or not found[0][2] or found[0][0] not in set(request_hashes()):
        return None
    return replay(key, found[0][0], now=now, found=found)


def purge_expired(*, now: datetime) -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now).delete()
    return deleted
