"""Nurture hand-off: a disqualified lead becomes a ``lead.disqualified`` outbox row (no booking), delivered by
the booking outbox machinery (retries, leases, sweep) to the nurture webhook ``BATON_NURTURE_WEBHOOK_URL``."""

from __future__ import annotations

from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction

from booking import outbox
from booking.models import OutboxMessage
from leads import conf

EVENT = "lead.disqualified"


def nurture_webhook(payload: dict) -> str:
    """POST the lead to the nurture webhook; raise (so the outbox retries) on a failed delivery: any answer
    but a 2xx. A redirect is not followed: ``requests`` would follow a 301/302 with a GET without the body,
    whose 200 marked the lead delivered though it never arrived; its ``Location`` goes into the error
    instead (the URL to configure)."""
    url = conf.nurture_webhook_url()
    if not url:
        return "no BATON_NURTURE_WEBHOOK_URL configured; the lead is kept in the leads table"
    response = requests.post(url, json=payload, timeout=10, allow_redirects=False)
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location", "")
        raise requests.HTTPError(
            f"HTTP {response.status_code} redirect to {location!r}, not followed: the lead was not delivered "
            "(set BATON_NURTURE_WEBHOOK_URL to the URL that accepts the POST)",
            response=response,
        )
    response.raise_for_status()  # 4xx, 5xx
    return f"HTTP {response.status_code}"


def register(register_handler) -> None:
    register_handler(EVENT, nurture_webhook, name="leads.nurture_webhook")


def lead_emit(lead, *, message: str, now: datetime) -> list[OutboxMessage]:
    """Write one outbox row per registered ``lead.disqualified`` handler (inside the caller's transaction)."""
    payload = {
        "event": EVENT,
        "lead_id": lead.pk,
        "meeting_type": lead.meeting_type.slug,
        "email": lead.email,
        "name": lead.name,
        "timezone": lead.timezone,
        "country": lead.country,
        "answers": lead.answers,
        "utm": lead.utm,
        "score": lead.score,
        "rule": lead.matched_rule.name if lead.matched_rule else None,
        "message": message,
    }
    rows = [
        OutboxMessage(
            event=EVENT,
            handler=reg.name,
            payload=payload,
            created_at=now,
            next_attempt_at=now + timedelta(seconds=settings.BOOKING_OUTBOX_GRACE_SECONDS),
        )
        for reg in outbox.REGISTRY[EVENT].values()
    ]
    created = OutboxMessage.objects.bulk_create(rows)
    ids = [row.pk for row in created]
    if ids:
        transaction.on_commit(lambda: outbox.enqueue(ids))
    return created
