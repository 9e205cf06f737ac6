"""Hands committed outbox rows to the broker from a background thread (one per process).

A booking's response then never waits for the broker: a slow or unreachable broker delays delivery, not the
booking (its rows are committed; the periodic sweep delivers whatever is not published). The thread waits
``LINGER_SECONDS`` after the first rows it takes for more to arrive, and rows committed while a publish is
under way go out in the next message, so under load one message carries the rows of several bookings (at
most ``MAX_BATCH`` ids). A publish costs the web process more CPU than the rest of a booking's outbox work
(Celery builds the message, its headers and a repr of the arguments): measured with ``make bench``'s 16
clients, one publish per booking was ~10 % of the workers' Python time. The linger delays the emails by at
most that long.

The thread starts on first use in each process, again after a fork (gunicorn and Celery fork workers), and
``flush`` waits for everything submitted so far (used at exit and by tests). ``Publisher`` takes any
publish callable (``calendars.tasks`` has its own, for its tasks).
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("booking.outbox")
MAX_BATCH = 100
LINGER_SECONDS = 0.05


class Publisher:
    """Hands the items submitted in lists to ``publish`` from one background thread, in batches of at most
    ``MAX_BATCH`` items. A ``publish`` that raises is logged (``failure``, with the batch) and the next batch
    goes on."""

    def __init__(
        self,
        publish: Callable[[list], None],
        *,
        linger: float = 0.0,
        name: str = "outbox-publisher",
        failure: str = "could not enqueue outbox messages %s; the sweep will deliver them",
    ):
        self._publish = publish
        self._linger = linger
        self._name = name
        self._failure = failure
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0  # submitted lists not yet published (or failed)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def submit(self, items: list) -> None:
        self._ensure_running()
        with self._idle:
            self._pending += 1
        self._queue.put(list(items))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted item was handed to the broker (or failed); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def after_fork(self) -> None:
        """In a forked child: the parent's thread, queue and locks are not ours (a lock may even have been
        held by a parent thread at the fork). Registered with ``os.register_at_fork``."""
        self._lock, self._idle = threading.Lock(), threading.Condition()
        self._queue, self._pending, self._thread = queue.SimpleQueue(), 0, None
        self._pid = os.getpid()

    def _ensure_running(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        if self._pid != os.getpid():  # forked without the hook (registered for the module-level ones)
            self.after_fork()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch, taken = self._queue.get(), 1
            deadline = time.monotonic() + self._linger
            while len(batch) < MAX_BATCH:
                try:
                    batch += self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                taken += 1
            try:
                self._publish(batch)
            except Exception:  # broker unreachable, misconfigured, …: the sweep will deliver
                logger.warning(self._failure, batch, exc_info=True)
            finally:
                with self._idle:
                    self._pending -= taken
                    self._idle.notify_all()


def _publish(ids: list[int]) -> None:
    from booking.tasks import deliver_outbox_messages

    deliver_outbox_messages.apply_async((ids,), retry=False)


publisher = Publisher(_publish, linger=LINGER_SECONDS)
atexit.register(publisher.flush, 2.0)
os.register_at_fork(after_in_child=publisher.after_fork)
