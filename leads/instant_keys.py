"""The instant route's response and its ``Idempotency-Key`` (``POST /api/v1/route`` without ``dry_run``).

A phone system or form backend that lost the answer (a dropped connection, a ``503 unavailable``) sends the
same request again with the same key, as the booking API asks clients to do. The key works as a booking's
(``booking.services.idempotency``, whose table, lock, seal, expiry and purge it shares): the same key with
the same body within ``BOOKING_IDEMPOTENCY_TTL_HOURS`` answers the first ``200`` again (``Idempotent-Replayed:
true``) and stores no second lead, nor charges a second rep; with another body it is ``422
idempotency_key_reused``; only a stored lead's response is remembered (after a ``409 no_rep_available`` the
same key may be sent again). Its keys live in their own key space (``idempotency.scoped``): a client that
happens to use one key for a booking and for an instant route gets each request's own answer.
"""

from __future__ import annotations

from datetime import datetime

from booking.services import idempotency
from routing import sqlwrites

SCOPE = "instant-route"


def instant_key(idempotency_key: str | None) -> str | None:
    """The request's key (checked: ``InvalidInput`` for a malformed one) in the instant route's key space."""
    return idempotency.scoped(idempotency.check_key(idempotency_key), SCOPE)


def request_hash(
    meeting_type, *, email: str, name: str, timezone: str, answers: dict, utm: dict, country: str
) -> str:
    """What a replay must match: the request's fields as validated."""
    fields = {
        "meeting_type": meeting_type.slug,
        "email": email,
        "name": name,
        "timezone": timezone,
        "country": country,
        "answers": answers,
        "utm": utm,
    }
    return idempotency.fingerprint(fields)


def response_body(decision, *, lead_id: int | None, dry_run: bool) -> dict:
    """The ``200`` body of an instant route (``decision``: a ``leads.instant.InstantDecision``)."""
    rule = decision.rule
    body = {
        "disqualified": decision.disqualified,
        "dry_run": dry_run,
        "lead_id": lead_id,
        "rule": None if rule is None else {"id": rule.pk, "name": rule.name},
        "decision": decision.record,
    }
    if decision.disqualified:
        body["message"] = decision.message
    else:
        body["rep"] = decision.record["rep"]
    return body


def store(claim: idempotency.Claim, body: dict, *, now: datetime) -> None:
    """Store ``body`` for the claim's key, in the instant route's transaction (after its lead): the key's row
    goes in (under the key's turn on PostgreSQL), or the row ``idempotency.begin`` claimed is filled in."""
    first, rows, then = idempotency.response_writes(
        claim, booking_id=None, status_code=200, body=body, now=now
    )
    sqlwrites.insert_many([rows], first=first, then=then)
