"""How long a failed outbox row waits before its next attempt (``booking.outbox``, ``booking.tasks``): its
back-off step, or the pause its handler asked for when longer (a provider's ``Retry-After`` carried by
``CalendarWriteFailed.retry_after``), capped at an hour; and a handler's waiting for another message's
effect (``Waiting``), which its row's last allowed attempt does not allow (``may_wait``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db.models import Min
from django.utils import timezone

from booking.models import OutboxMessage


def backoff_seconds(attempts: int) -> int:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return min(30 * 2 ** max(attempts - 1, 0), 3600)


RETRY_AFTER_CAP_SECONDS = 3600  # the longest pause a handler's ``retry_after`` may ask (a year-off date: 1 h)


def asked_wait(exc: BaseException) -> float:
    """The pause (seconds, at most ``RETRY_AFTER_CAP_SECONDS``) a handler's exception asks for with a
    ``retry_after`` attribute (``CalendarWriteFailed``: a provider's ``Retry-After``); else 0."""
    wait = getattr(exc, "retry_after", None)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait):
        return 0.0
    return min(max(float(wait), 0.0), RETRY_AFTER_CAP_SECONDS)


class Waiting(Exception):
    """Raised by a handler whose message waits for another message's effect (a co-host's e-mail for the
    video link the lead's calendar write makes: ``booking.emails``). It is attempted again once the rest
    of its batch has run (one event's rows go in one batch, so the other message is usually among them);
    still waiting then, it is a failed attempt, retried after its back-off (``outbox._run_all``). A message
    never dies of waiting: on its row's last allowed attempt, once the rest of its batch has run, the
    handler is called with ``may_wait()`` false and must do without what it waited for."""


_may_wait: ContextVar[bool] = ContextVar("booking_outbox_may_wait", default=True)


def may_wait() -> bool:
    """Whether a handler may raise ``Waiting`` now: false on its row's last allowed attempt
    (``BOOKING_OUTBOX_MAX_ATTEMPTS``) once the rest of the batch has run, where a ``Waiting`` would make the
    row dead and its effect (an e-mail) would never happen. True outside the outbox."""
    return _may_wait.get()


def call(handler: Callable[[dict], Any], payload: dict, *, may_wait: bool) -> Any:
    """``handler(payload)``, with ``may_wait()`` answering ``may_wait`` while it runs (``outbox._run``)."""
    token = _may_wait.set(may_wait)
    try:
        return handler(payload)
    finally:
        _may_wait.reset(token)


def retry_countdown(message_ids: list[int], *, attempt: int, now: datetime | None = None) -> int:
    """A task's retry countdown for the rows that failed: its back-off step, or until the earliest of their
    ``next_attempt_at`` if later (a handler asked for a pause, ``asked_wait``): ``due_only`` skips a row not
    due yet. Rows due later still are the sweep's."""
    countdown = backoff_seconds(attempt)
    pending = OutboxMessage.objects.filter(pk__in=message_ids, status=OutboxMessage.Status.PENDING)
    due = pending.aggregate(first=Min("next_attempt_at"))["first"]
    if due is not None:
        countdown = max(countdown, math.ceil((due - (now or timezone.now())).total_seconds()))
    return countdown


__all__ = [
    "RETRY_AFTER_CAP_SECONDS",
    "Waiting",
    "asked_wait",
    "backoff_seconds",
    "call",
    "may_wait",
    "retry_countdown",
]
