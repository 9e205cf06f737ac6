"""Celery tasks of the booking app (thin: they take primary keys and call services).

Periodic (PeriodicTasks created by migration 0005, editable in the admin): ``booking.outbox_sweep`` every
minute and ``booking.purge_idempotency_keys`` every hour.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from booking import outbox
from booking.services import idempotency


@shared_task(bind=True, name="booking.deliver_outbox_message", ignore_result=True, max_retries=8)
def deliver_outbox_message(self, message_id: int) -> str:
    """Deliver one outbox row; on failure retry with exponential backoff (the sweep is the safety net).
    Eagerly (no broker) a failure is left to the sweep instead of retrying in a tight loop."""
    result = outbox.deliver(message_id=message_id)
    if result == "retry" and not self.app.conf.task_always_eager and self.request.retries < self.max_retries:
        raise self.retry(countdown=outbox.backoff_seconds(self.request.retries + 1))
    return result


@shared_task(name="booking.outbox_sweep", ignore_result=True)
def outbox_sweep() -> dict:
    return outbox.sweep()


@shared_task(name="booking.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired(now=timezone.now())
