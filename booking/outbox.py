"""The booking outbox: side effects written in the booking's transaction, delivered after it commits.

The rows one event writes go to Celery as one task (``booking.tasks.deliver_outbox_messages``).

Handlers register for booking events::

    from booking.outbox import register_handler

    register_handler("booking.confirmed", send_something)                 # name: "<module>.<function>"
    @register_handler("booking.cancelled", name="crm.cancel")              # or as a decorator
    def cancel_in_crm(payload): ...

Events: ``booking.confirmed``, ``booking.rescheduled`` (also used when an admin reassigns a host),
``booking.cancelled`` and ``booking.outcome_recorded`` (staff or a host recorded what came of the
meeting: ``kind``, ``amount``, ``previous``; no email is sent for it).
When the booking services write an event, ``emit`` creates one ``OutboxMessage`` row
per registered handler (or several, when the handler registered a ``fanout`` that splits the event, e.g.
one email per host). A handler is called with the row's payload — always ``booking_id``, ``event``,
``sequence``, plus what the fan-out added and any sealed secrets — and must raise to ask for a retry.

Apps register without editing this module: at start-up ``BookingConfig.ready`` imports ``<app>.outbox``
of every installed app and calls its ``register(register_handler)`` function if it has one (the calendars
app registers its calendar writes this way).

Delivery (``deliver``, ``deliver_many``, ``sweep``) claims a row with a lease before calling the handler: on
PostgreSQL with ``SELECT … FOR UPDATE SKIP LOCKED``, so two workers never deliver the same row; the handler
runs outside any transaction; success marks the row delivered (only if the lease is still ours). The rows
of a batch share one lease: a row whose turn comes with less than half of it left has it renewed first, or
is skipped if another worker took it after it ran out (``_still_mine``). A crashed
worker's lease runs out and the sweep delivers the row again, so delivery is at-least-once and, barring such
a crash between a handler's effect and the commit of "delivered", exactly once. At Celery's soft time limit
(``SoftTimeLimitExceeded``, raised inside whatever runs; the hard kill follows) no further handler of a
batch starts: the interrupted row is recorded as a failed attempt, the rows not reached are handed back
(``_hand_back``) and the exception goes on to the task, so the kill cannot land in a later handler.

The tasks deliver with ``due_only``: a row already attempted waits for its ``next_attempt_at`` (the back-off),
whichever of the task's retry and the sweep comes first. A handler's exception with a ``retry_after``
attribute (seconds; a calendar write a provider throttled with ``Retry-After``) puts the next attempt at
least that far off, capped at an hour (``outbox_waits.RETRY_AFTER_CAP_SECONDS``), and the task's retry
waits for it too. A handler raising ``outbox_waits.Waiting`` (its message waits for another's effect) is
called again after the rest of its batch, then, still waiting, retried as any failure, but it never dies of
it (``outbox_waits.may_wait``). A dead row is given a new round of attempts by ``dead_retry`` (admin "Retry").
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from booking.models import Booking, OutboxMessage
from booking.outbox_waits import Waiting, asked_wait, backoff_seconds, call
from booking.publisher import publisher
from routing import sqlwrites

logger = logging.getLogger("booking.outbox")

EVENTS = ("booking.confirmed", "booking.rescheduled", "booking.cancelled", "booking.outcome_recorded")
EVENTS += ("lead.disqualified",)  # written by leads.outbox (no booking): nurture hand-off
Handler = Callable[[dict], Any]
Fanout = Callable[[Booking, dict], list[dict]]


@dataclass(frozen=True)
class Registration:
    name: str
    handler: Handler
    fanout: Fanout | None


HANDLERS: dict[str, Handler] = {}
REGISTRY: dict[str, dict[str, Registration]] = {event: {} for event in EVENTS}


def register_handler(
    event: str, handler: Handler | None = None, *, name: str | None = None, fanout: Fanout | None = None
):
    """Register ``handler`` for ``event`` (idempotent per name); usable as a decorator."""
    if event not in REGISTRY:
        raise ValueError(f"unknown booking event {event!r}; expected one of {EVENTS}")

    def add(func: Handler) -> Handler:
        key = name or f"{func.__module__}.{func.__qualname__}"
        HANDLERS[key] = func
        REGISTRY[event][key] = Registration(key, func, fanout)
        return func

    return add(handler) if handler is not None else add


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"outbox:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def emit(
    event: str,
    booking: Booking,
    *,
    context: dict | None = None,
    secrets: dict | None = None,
    now: datetime | None = None,
) -> list[OutboxMessage]:
    """Write the outbox rows of ``event`` for ``booking`` (call inside the booking's transaction) and
    arrange for their delivery after commit. ``secrets`` (e.g. the manage URL) are stored encrypted and
    wiped once the row is delivered."""
    rows = messages(event, booking, context=context, sealed=seal(secrets), now=now)
    sqlwrites.insert(rows)
    deliver_after_commit(rows)
    return rows


def seal(secrets: dict | None) -> str:
    """``secrets`` encrypted for ``messages`` (empty without any)."""
    return _fernet().encrypt(json.dumps(secrets).encode()).decode() if secrets else ""


def messages(
    event: str,
    booking: Booking,
    *,
    context: dict | None = None,
    sealed: str = "",
    now: datetime | None = None,
) -> list[OutboxMessage]:
    """``emit``'s rows, not saved, for a caller that inserts them with rows of its own (the booking's, in
    one round trip: ``routing.sqlwrites.insert_many``) and then calls ``deliver_after_commit``. ``booking``
    has its key (payloads carry it); ``sealed``: ``seal``'s result."""
    now = now or timezone.now()
    context = dict(context or {})
    base = {"booking_id": booking.pk, "event": event, "sequence": booking.sequence}
    rows = []
    sharing = _shared.set({})  # fan-outs of this event share what they take of the booking (``shared``)
    try:
        built = [
            (reg, reg.fanout(booking, context) if reg.fanout else [context])
            for reg in REGISTRY[event].values()
        ]
    finally:
        _shared.reset(sharing)
    for reg, payloads in built:
        for extra in payloads:
            rows.append(
                OutboxMessage(
                    event=event,
                    handler=reg.name,
                    booking=booking,
                    payload={**extra, **base},
                    sealed=sealed,
                    created_at=now,
                    next_attempt_at=now + timedelta(seconds=settings.BOOKING_OUTBOX_GRACE_SECONDS),
                )
            )
    return rows


_shared: ContextVar[dict | None] = ContextVar("booking_outbox_shared", default=None)


def shared(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()``, made once for ``key`` while ``messages`` runs the fan-outs of one event, where they all
    read the same booking and context: the e-mails' booking snapshot (``booking.emails.snapshot``), which the
    prospect's and the hosts' fan-outs each took (0.13 M instructions each, under the rep locks of a new
    booking; 2026-12-07). Outside ``messages``, ``make()`` every time. The value is shared between the rows'
    payloads, as one fan-out's rows already share it: treat it as read-only."""
    memo = _shared.get()
    if memo is None:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


def deliver_after_commit(rows: list[OutboxMessage]) -> None:
    """Hand ``rows`` to ``enqueue`` once the transaction commits. Their keys are read then: a caller may
    register them before it inserts them (in the same transaction), so that a failed insert discards this."""
    if rows:
        transaction.on_commit(lambda: enqueue([row.pk for row in rows]))


def enqueue(ids: list[int]) -> None:
    """Hand committed rows to Celery (``booking.tasks.deliver_outbox_messages``: each row keeps its own
    claim, attempts and outcome; only the rows that fail are retried). With a broker this returns at once:
    ``booking.publisher`` publishes from a background thread, batching rows committed meanwhile, and a
    broker failure is logged there (the sweep delivers). Without one the task runs here, in-process."""
    from booking.tasks import deliver_outbox_messages

    if deliver_outbox_messages.app.conf.task_always_eager:
        try:
            deliver_outbox_messages.apply_async((list(ids),))
        except Exception:  # a handler's own failure is recorded on its row; anything else: the sweep
            logger.warning("outbox messages %s: in-process delivery failed", ids, exc_info=True)
        return
    publisher.submit(ids)


def _claimable(now: datetime) -> Q:
    return Q(status=OutboxMessage.Status.PENDING) & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _due(now: datetime) -> Q:
    """Never attempted (a fresh row's task does not wait for the sweep's grace), or its back-off is over."""
    return Q(attempts=0) | Q(next_attempt_at__lte=now)


def _claim(qs, *, now: datetime, limit: int) -> list[OutboxMessage]:
    lease = now + timedelta(seconds=settings.BOOKING_OUTBOX_LEASE_SECONDS)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        rows = list(qs.filter(_claimable(now)).order_by("next_attempt_at", "pk")[:limit])
        for row in rows:
            row.claimed_until = lease
            row.attempts += 1
            row.claimed_at = (now, timezone.now())  # for ``_still_mine``
        OutboxMessage.objects.bulk_update(rows, ["claimed_until", "attempts"])
    return rows


def _still_mine(row: OutboxMessage) -> bool:
    """Before a row's handler runs: is its lease still ours? The rows of a batch (``deliver_many``) share
    one lease, and the handlers before a row's turn may have taken most of it; once it runs out the sweep
    may claim the row and deliver it, and delivering it here too sent the prospect a second e-mail. With
    less than half the lease left, it is renewed if nobody took it meanwhile (else the row is skipped)."""
    claimed, began = row.claimed_at
    current = claimed + (timezone.now() - began)  # in the claim's clock (a caller may pass its own ``now``)
    half = timedelta(seconds=settings.BOOKING_OUTBOX_LEASE_SECONDS / 2)
    if current + half < row.claimed_until:
        return True  # nobody claims a row before its lease runs out
    lease = current + timedelta(seconds=settings.BOOKING_OUTBOX_LEASE_SECONDS)
    renewed = OutboxMessage.objects.filter(
        pk=row.pk, claimed_until=row.claimed_until, status=OutboxMessage.Status.PENDING
    ).update(claimed_until=lease)
    if renewed:
        row.claimed_until = lease
    else:  # another worker has it, and counted its own attempt: ours was none
        OutboxMessage.objects.filter(pk=row.pk, attempts__gt=0).update(attempts=F("attempts") - 1)
    return bool(renewed)


def _failed(row: OutboxMessage, mine, error: str, *, now: datetime, wait: float = 0.0) -> str:
    """Record a failed attempt on the row (if its lease is still ours): "retry" after its back-off (or
    ``wait``, the pause asked for, if longer), or "dead" after ``BOOKING_OUTBOX_MAX_ATTEMPTS``."""
    dead = row.attempts >= settings.BOOKING_OUTBOX_MAX_ATTEMPTS
    logger.warning("outbox message %s (%s) failed, attempt %s: %s", row.pk, row.handler, row.attempts, error)
    mine.update(
        status=OutboxMessage.Status.DEAD if dead else OutboxMessage.Status.PENDING,
        last_error=error[:2000],
        next_attempt_at=now + timedelta(seconds=max(backoff_seconds(row.attempts), wait)),
        claimed_until=None,
    )
    return "dead" if dead else "retry"


def _run(row: OutboxMessage, *, last: bool = True) -> str:
    """Call the row's handler and record the outcome. Returns "delivered", "retry", "dead" or "skipped"
    (its lease ran out before its turn and another worker has it); not ``last``, "waiting" for a handler
    that raised ``Waiting`` (nothing recorded); ``last`` on the row's last allowed attempt, the handler may
    not wait (``outbox_waits.may_wait``). ``SoftTimeLimitExceeded`` is recorded as an attempt and raised."""
    if not _still_mine(row):
        return "skipped"
    now = timezone.now()
    mine = OutboxMessage.objects.filter(pk=row.pk, claimed_until=row.claimed_until)
    try:
        handler = HANDLERS.get(row.handler)
        if handler is None:
            raise LookupError(f"no outbox handler registered as {row.handler!r}")
        payload = dict(row.payload)
        if row.sealed:
            try:
                payload.update(json.loads(_fernet().decrypt(row.sealed.encode())))
            except InvalidToken:
                logger.warning("outbox message %s: sealed secrets unreadable (SECRET_KEY changed)", row.pk)
        final = last and row.attempts >= settings.BOOKING_OUTBOX_MAX_ATTEMPTS  # a Waiting would kill it
        result = call(handler, payload, may_wait=not final)
    except SoftTimeLimitExceeded:  # an Exception too, but the task must stop: the hard kill is close
        _failed(row, mine, "SoftTimeLimitExceeded: stopped by the task's soft time limit", now=now)
        raise
    except Exception as exc:
        if isinstance(exc, Waiting) and not last:
            return "waiting"
        return _failed(row, mine, f"{type(exc).__name__}: {exc}", now=now, wait=asked_wait(exc))
    mine.update(
        status=OutboxMessage.Status.DELIVERED,
        delivered_at=now,
        claimed_until=None,
        sealed="",
        result=("" if result is None else str(result))[:2000],
        last_error="",
    )
    return "delivered"


def _hand_back(rows: list[OutboxMessage]) -> None:
    """Give up the claim on rows whose handler never ran (a batch stopped at the soft time limit): the lease
    is cleared and the attempt ``_claim`` counted is taken back, in one UPDATE; a row whose lease is no
    longer ours (or no longer pending) is left alone."""
    if rows:
        ours = reduce(or_, (Q(pk=row.pk, claimed_until=row.claimed_until) for row in rows))
        OutboxMessage.objects.filter(ours, status=OutboxMessage.Status.PENDING, attempts__gt=0).update(
            claimed_until=None, attempts=F("attempts") - 1
        )


def _run_all(rows: list[OutboxMessage]) -> list[tuple[OutboxMessage, str]]:
    """``_run`` each claimed row in turn. At the soft time limit the rows not run yet are handed back (the
    one that was running when it came too, unless ``_run`` recorded it) and the exception is raised on: the
    hard kill, a minute later, must not land in the middle of a handler (an e-mail accepted by the mail
    server and never marked delivered is sent again). A row waiting for another's effect (``Waiting``) is
    run again, still under its claim, after the others."""
    done, waiting = [], []
    for again, turn in ((False, rows), (True, waiting)):
        for i, row in enumerate(turn):
            try:
                result = _run(row, last=again or len(rows) == 1)
            except SoftTimeLimitExceeded:
                _hand_back(turn[i:] + ([] if again else waiting))
                raise
            if result == "waiting":
                waiting.append(row)
            else:
                done.append((row, result))
    return done


def deliver(*, message_id: int, now: datetime | None = None, due_only: bool = False) -> str:
    """Deliver one row if it is pending and not claimed by someone else. Returns "delivered", "retry",
    "dead" or "skipped" (already delivered, given up, being delivered elsewhere, or — ``due_only``, the
    tasks' way — attempted before and its ``next_attempt_at`` not reached yet)."""
    return deliver_many(message_ids=[message_id], now=now, due_only=due_only)[message_id]


def deliver_many(
    *, message_ids: list[int], now: datetime | None = None, due_only: bool = False
) -> dict[int, str]:
    """``deliver`` for several rows, claimed together (one transaction), each handler called on its own:
    ``{id: outcome}``, "skipped" for rows not claimed (delivered, given up or leased elsewhere). The tasks
    pass ``due_only``: their retry is scheduled from the task's own retry count, and when the sweep made
    an attempt meanwhile the row would be attempted again at once, two attempts per back-off step (the
    row dies hours early); a row attempted before waits for its ``next_attempt_at`` (the sweep takes it)."""
    now = now or timezone.now()
    qs = OutboxMessage.objects.filter(pk__in=message_ids)
    rows = _claim(qs.filter(_due(now)) if due_only else qs, now=now, limit=len(message_ids))
    outcome = dict.fromkeys(message_ids, "skipped")
    for row, result in _run_all(rows):
        outcome[row.pk] = result
    return outcome


def sweep(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Deliver due rows (pending, next attempt reached, not claimed): what a down worker left behind."""
    now = now or timezone.now()
    outcome: dict[str, int] = {}
    due = OutboxMessage.objects.filter(next_attempt_at__lte=now)
    for _, result in _run_all(_claim(due, now=now, limit=limit)):
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def dead_retry(*, message_ids: list[int], now: datetime, by: str) -> int:
    """Give dead rows a new round of ``BOOKING_OUTBOX_MAX_ATTEMPTS`` attempts (after an outage longer than
    the ~5 h the back-off spans), due at once: the sweep delivers them within a minute. One UPDATE of the
    rows still dead, so a row already put back (a second click, another admin) and claimed by a sweep
    keeps its lease and attempts. The retry is noted in ``last_error`` (with the error the row died of)
    and logged. Returns how many rows were put back."""
    note = f"Retried by {by} at {now.isoformat(timespec='seconds')} after: "
    count = OutboxMessage.objects.filter(pk__in=message_ids, status=OutboxMessage.Status.DEAD).update(
        status=OutboxMessage.Status.PENDING,
        attempts=0,
        next_attempt_at=now,
        claimed_until=None,
        last_error=Concat(Value(note), F("last_error"), output_field=TextField()),
    )
    logger.info("outbox: %s of dead messages %s put back to pending by %s", count, message_ids, by)
    return count


PURGE_BATCH = 5000


def purge_finished(*, now: datetime) -> int:
    """Delete messages delivered more than ``BOOKING_OUTBOX_RETENTION_DAYS`` ago, and dead ones made that
    long ago, in batches (short locks); returns how many. Their payloads hold the prospect's name, e-mail and
    answers, kept for ever before; a pending message is never purged."""
    before = now - timedelta(days=settings.BOOKING_OUTBOX_RETENTION_DAYS)
    delivered = Q(status=OutboxMessage.Status.DELIVERED, delivered_at__lt=before)
    dead = Q(status=OutboxMessage.Status.DEAD, created_at__lt=before)
    finished = OutboxMessage.objects.filter(delivered | dead)
    total = 0
    while True:
        ids = list(finished.order_by().values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return total
        total += OutboxMessage.objects.filter(pk__in=ids).delete()[0]
