"""Nurture hand-off: a disqualified lead becomes a ``lead.disqualified`` outbox row (no booking), delivered by
the booking outbox machinery (retries, leases, sweep) to the nurture webhook ``BATON_NURTURE_WEBHOOK_URL``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from booking import outbox
from booking.models import OutboxMessage
from leads import conf
from leads.models import Lead

EVENT = "lead.disqualified"
ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]{1,80}")  # "[Errno 111] Connection refused": says no URL


class NurtureDeliveryFailed(Exception):
    """A failed delivery, said without the webhook's path and query: Baton sends the receiver nothing else
    to authenticate with, so for Zapier-style hooks the path is the credential, and this text goes into the
    outbox row's ``last_error`` (shown in the admin) and the log. ``requests``' own errors name the URL."""


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no credentials, path or query (as ``feed_label`` shows a feed)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "the webhook's host"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}"


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect points, told without its path (which usually carries the same secret): the
    usual cases (a missing trailing slash, http → https) by name, else the host."""
    target = urljoin(url, location)
    if target == url + "/":
        return "to the same URL with a trailing slash"
    if url.startswith("http://") and target == "https://" + url[len("http://") :]:
        return "to the same URL over https"
    return f"to {_origin(target)} (path hidden)"


def nurture_webhook(payload: dict) -> str:
    """POST the lead to the nurture webhook; raise (so the outbox retries) on a failed delivery: any answer
    but a 2xx, as ``NurtureDeliveryFailed`` with the error's kind, status and host only. A redirect is not
    followed: ``requests`` would follow a 301/302 with a GET without the body, whose 200 marked the lead
    delivered though it never arrived; where it points goes into the error instead (the URL to configure).
    A lead deleted since is not sent (the row is done, with that said as its result)."""
    lead_id = payload.get("lead_id")
    if lead_id is not None and not Lead.objects.filter(pk=lead_id).exists():
        # deleted meanwhile (an erasure request; ``leads_delete`` takes its rows, other deletions do not):
        # its data is not handed on; done, not retried
        return f"not sent: lead {lead_id} was deleted"
    url = conf.nurture_webhook_url()
    if not url:
        return "no BATON_NURTURE_WEBHOOK_URL configured; the lead is kept in the leads table"
    try:
        response = requests.post(url, json=payload, timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        reason = ERRNO.search(str(exc))
        detail = f": {reason.group().strip()}" if reason else ""
        raise NurtureDeliveryFailed(
            f"{type(exc).__name__} posting to {_origin(url)} (path hidden){detail}"
        ) from None  # the cause's text names the URL: not in the log's traceback either
    status = response.status_code
    if 300 <= status < 400:
        target = _redirect_target(url, response.headers.get("Location", ""))
        raise NurtureDeliveryFailed(
            f"HTTP {status} redirect {target}, not followed: the lead was not delivered "
            "(set BATON_NURTURE_WEBHOOK_URL to the URL that accepts the POST)"
        )
    if status >= 400:  # 4xx, 5xx
        said = f"HTTP {status} {(response.reason or '')[:60]}".strip()
        raise NurtureDeliveryFailed(f"{said} from {_origin(url)} (path hidden)")
    return f"HTTP {status}"


def register(register_handler) -> None:
    register_handler(EVENT, nurture_webhook, name="leads.nurture_webhook")


def lead_messages(lead_ids) -> QuerySet:
    """The outbox rows of the leads ``lead_ids`` (they have no booking: ``lead_emit`` keys them by the
    payload's ``lead_id``)."""
    return OutboxMessage.objects.filter(booking__isnull=True, payload__lead_id__in=list(lead_ids))


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
