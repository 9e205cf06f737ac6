"""Push notifications: Google events.watch channels and Microsoft Graph subscriptions.

Channels are opened for blocking Google/Microsoft calendars when push is enabled, renewed before they
expire (Google: a new channel, then channels.stop of the old one; Microsoft: PATCH of the expiry, or, when
the subscription delivers to another address than ``push_address``, a new one and the old one deleted), and
stopped when a calendar stops blocking or is disconnected. Incoming notifications are checked (channel
token / clientState compared in constant time against a stored SHA-256) and turned into a queued sync;
nothing slow happens while the provider waits for the answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from calendars.errors import CalendarError, CalendarGone, GrantRevoked
from calendars.models import Calendar, CalendarConnection
from calendars.providers.base import Watch
from calendars.services.connections import connection_mark_disconnected, provider_for
from calendars.services.sync import calendar_gone_confirm, request_sync
from routing.validators import SURROGATE

logger = logging.getLogger("calendars")
Provider = CalendarConnection.Provider
Status = CalendarConnection.Status
MAX_SUBSCRIPTIONS_PER_BATCH = 1000
TTL = {Provider.GOOGLE: timedelta(days=7), Provider.MICROSOFT: timedelta(minutes=4200)}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(received: str, stored_hash: str) -> bool:
    return bool(stored_hash) and hmac.compare_digest(_digest(received or ""), stored_hash)


def push_address(provider: str) -> str:
    return f"{settings.CALENDAR_WEBHOOK_BASE_URL}/calendars/webhooks/{provider}"


def watch_ensure(*, calendar_id: int, now: datetime | None = None) -> str:
    """Open or renew the push channel of one calendar when needed. Returns: disabled, not_needed, ok,
    subscribed, renewed, stopped, disconnected, failed, removed (the provider does not find the calendar,
    nor lists it: removed from Baton, ``calendar_gone_confirm``), or superseded (another run recorded its
    channel first, or the calendar was removed meanwhile: the channel this run opened is stopped again)."""
    now = now or timezone.now()
    if not settings.CALENDAR_PUSH_ENABLED:
        return "disabled"
    cal = Calendar.objects.select_related("connection__rep").filter(pk=calendar_id).first()
    if cal is None or cal.connection.provider not in TTL or cal.connection.status == Status.DISCONNECTED:
        return "not_needed"
    if not cal.blocks_availability:
        if cal.watch_channel_id:
            watch_stop(calendar=cal)
            return "stopped"
        return "not_needed"
    renew_before = timedelta(hours=settings.CALENDAR_WATCH_RENEW_HOURS)
    if cal.watch_channel_id and cal.watch_expiration and cal.watch_expiration - now > renew_before:
        return "ok"
    provider_name = cal.connection.provider
    secret = secrets.token_urlsafe(32)
    try:
        provider = provider_for(cal.connection)
        if cal.watch_channel_id:
            old = Watch(cal.watch_channel_id, cal.watch_resource_id, cal.watch_expiration or now)
            watch = provider.renew(
                cal.external_id,
                old,
                address=push_address(provider_name),
                secret=secret,
                ttl=TTL[provider_name],
            )
            outcome = "renewed"
        else:
            watch = provider.subscribe(
                cal.external_id, address=push_address(provider_name), secret=secret, ttl=TTL[provider_name]
            )
            outcome = "subscribed"
    except GrantRevoked as exc:
        connection_mark_disconnected(connection_id=cal.connection_id, reason=exc.message)
        return "disconnected"
    except CalendarError as exc:
        # not found (Google's CalendarGone, Graph's 404 to the subscription): the calendar was deleted?
        not_found = isinstance(exc, CalendarGone) or getattr(exc, "status", None) == 404
        if not_found and calendar_gone_confirm(calendar=cal):
            return "removed"
        logger.warning("push channel for calendar %s (%s) failed: %s", cal.pk, provider_name, exc.message)
        return "failed"
    kept_secret = (
        outcome == "renewed" and watch.channel_id == cal.watch_channel_id
    )  # Graph PATCH keeps clientState
    # only over the channel this run started from: a concurrent renewal (the sweep and the rep's page) or a
    # disconnect (the row gone) got there first, and the channel just opened would push, unknown, for days
    recorded = Calendar.objects.filter(pk=cal.pk, watch_channel_id=cal.watch_channel_id).update(
        watch_channel_id=watch.channel_id,
        watch_resource_id=watch.resource_id,
        watch_expiration=watch.expiration,
        watch_secret_hash=cal.watch_secret_hash if kept_secret else _digest(secret),
    )
    if not recorded:
        if watch.channel_id != cal.watch_channel_id:  # not a Graph PATCH of the channel someone else keeps
            _stop_quietly(provider, cal, watch)
        return "superseded"
    if outcome == "renewed" and watch.channel_id != cal.watch_channel_id:  # a new channel in its place
        _stop_quietly(provider, cal, old)
    return outcome


def _stop_quietly(provider, cal: Calendar, watch: Watch) -> None:
    """Stop a channel with the run's ``provider``: its token may have been refreshed meanwhile, and
    Microsoft replaces the refresh token when used, so the credentials ``cal`` was read with may not work."""
    try:
        with contextlib.suppress(GrantRevoked):
            provider.unsubscribe(watch)
    except CalendarError as exc:
        logger.info("could not stop push channel %s of calendar %s: %s", watch.channel_id, cal.pk, exc.code)


def watch_stop(*, calendar: Calendar) -> None:
    """Stop the calendar's channel at the provider (errors other than a revoked grant propagate)."""
    if not calendar.watch_channel_id:
        return
    watch = Watch(
        calendar.watch_channel_id, calendar.watch_resource_id, calendar.watch_expiration or timezone.now()
    )
    with contextlib.suppress(GrantRevoked):  # nothing more can be done with this grant; it expires
        provider_for(calendar.connection).unsubscribe(watch)
    Calendar.objects.filter(pk=calendar.pk).update(
        watch_channel_id="", watch_resource_id="", watch_secret_hash="", watch_expiration=None
    )


def watches_due(*, now: datetime) -> list[int]:
    """Calendars whose channel is missing, expiring within the renewal window, or no longer needed."""
    if not settings.CALENDAR_PUSH_ENABLED:
        return []
    renew_by = now + timedelta(hours=settings.CALENDAR_WATCH_RENEW_HOURS)
    live = Calendar.objects.filter(connection__provider__in=list(TTL)).exclude(
        connection__status=Status.DISCONNECTED
    )
    needed = live.filter(blocks_availability=True).filter(
        Q(watch_channel_id="") | Q(watch_expiration__isnull=True) | Q(watch_expiration__lt=renew_by)
    )
    unneeded = live.filter(blocks_availability=False).exclude(watch_channel_id="")
    return sorted(set(needed.values_list("pk", flat=True)) | set(unneeded.values_list("pk", flat=True)))


def google_notification(*, channel_id: str, token: str, state: str, now: datetime | None = None) -> int:
    """Handle one Google push message; returns the HTTP status to answer with."""
    if state == "sync":
        return 200  # the handshake message sent when a channel opens
    cal = (
        Calendar.objects.filter(watch_channel_id=channel_id, connection__provider=Provider.GOOGLE).first()
        if _plain(channel_id)
        else None
    )
    if cal is None:
        return 404
    if not secret_matches(token, cal.watch_secret_hash):
        logger.warning("Google notification for calendar %s with a wrong channel token", cal.pk)
        return 403
    request_sync(calendar_id=cal.pk, now=now)
    return 200


def microsoft_notifications(*, payload: dict, now: datetime | None = None) -> int:
    """Handle a batch of Graph change / lifecycle notifications; returns how many were accepted.
    Notifications with an unknown subscription or a wrong clientState are dropped. The batch's
    subscriptions are looked up in one query (at most ``MAX_SUBSCRIPTIONS_PER_BATCH`` of them: the
    endpoint is public, and a poll catches up on anything dropped)."""
    from calendars.tasks import enqueue, watch_ensure_task

    items = [
        item
        for item in payload.get("value") or []
        if isinstance(item, dict) and _plain(item.get("subscriptionId")) and _plain(item.get("clientState"))
    ]
    ids = list(dict.fromkeys(item["subscriptionId"] for item in items))[:MAX_SUBSCRIPTIONS_PER_BATCH]
    calendars = {
        cal.watch_channel_id: cal
        for cal in Calendar.objects.filter(watch_channel_id__in=ids, connection__provider=Provider.MICROSOFT)
    }
    accepted = 0
    for item in items:
        cal = calendars.get(item["subscriptionId"])
        if cal is None or not secret_matches(item["clientState"], cal.watch_secret_hash):
            continue
        accepted += 1
        lifecycle = item.get("lifecycleEvent")
        if lifecycle == "subscriptionRemoved":
            Calendar.objects.filter(pk=cal.pk).update(
                watch_channel_id="", watch_resource_id="", watch_secret_hash="", watch_expiration=None
            )
            calendars.pop(item["subscriptionId"])  # the batch's later items name a subscription now gone
            enqueue(watch_ensure_task, cal.pk)
            request_sync(calendar_id=cal.pk, now=now)
        elif lifecycle == "reauthorizationRequired":
            Calendar.objects.filter(pk=cal.pk).update(watch_expiration=now or timezone.now())
            enqueue(watch_ensure_task, cal.pk)
        else:  # a change, or "missed": sync
            request_sync(calendar_id=cal.pk, now=now)
    dropped = len(payload.get("value") or []) - accepted
    if dropped:
        logger.warning("dropped %d Graph notification(s): unknown subscription or wrong clientState", dropped)
    return accepted


def _plain(value) -> bool:
    """A non-empty string a text column can hold and UTF-8 can encode (PostgreSQL refuses NUL; a lone
    surrogate, valid in JSON, failed the lookup and the clientState digest with a 500)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 1024
        and "\x00" not in value
        and not SURROGATE.search(value)
    )
