"""Celery tasks of the booking app (thin: they take primary keys and call services).

Periodic (PeriodicTasks created by migration 0005, editable in the admin): ``booking.outbox_sweep`` every
minute and ``booking.purge_idempotency_keys`` every hour; by migration 0013 ``booking.purge_outbox`` daily
(delivered and dead messages older than ``BOOKING_OUTBOX_RETENTION_DAYS``).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from booking import outbox, outbox_waits
from booking.services import idempotency


def _may_retry(task) -> bool:
    return not task.app.conf.task_always_eager and task.request.retries < task.max_retries


@shared_task(bind=True, name="booking.deliver_outbox_messages", ignore_result=True, max_retries=8)
def deliver_outbox_messages(self, message_ids: list[int]) -> dict:
    """Deliver the outbox rows one event wrote (one publish per booking, not per row); each row is claimed
    and recorded on its own. The rows that failed are retried together with exponential backoff (the sweep
    is the safety net), or after the pause a handler asked for (``outbox_waits.retry_countdown``); a row
    the sweep attempted meanwhile is left to it until its own ``next_attempt_at`` (``due_only``). Eagerly
    (no broker) a failure is left to the sweep instead of a tight loop. At the soft time limit the rows not
    reached are handed back to the sweep and the task fails (``outbox._run_all``)."""
    outcome = outbox.deliver_many(message_ids=message_ids, due_only=True)
    failed = [pk for pk, result in outcome.items() if result == "retry"]
    if failed and _may_retry(self):
        raise self.retry(
            args=(failed,), countdown=outbox_waits.retry_countdown(failed, attempt=self.request.retries + 1)
        )
    return outcome


@shared_task(bind=True, name="booking.deliver_outbox_message", ignore_result=True, max_retries=8)
def deliver_outbox_message(self, message_id: int) -> str:
    """Deliver one outbox row (the task of releases before ``deliver_outbox_messages``: kept so that
    messages already queued by them are still consumed after an upgrade)."""
    result = outbox.deliver(message_id=message_id, due_only=True)
    if result == "retry" and _may_retry(self):
        countdown = outbox_waits.retry_countdown([message_id], attempt=self.request.retries + 1)
        raise self.retry(countdown=countdown)
    return result


@shared_task(name="booking.outbox_sweep", ignore_result=True)
def outbox_sweep() -> dict:
    return outbox.sweep()


@shared_task(name="booking.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired(now=timezone.now())


@shared_task(name="booking.purge_outbox", ignore_result=True)
def purge_outbox() -> int:
    return outbox.purge_finished(now=timezone.now())
