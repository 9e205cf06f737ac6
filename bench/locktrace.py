"""How long bookings hold their rep locks, measured in the bench's gunicorn workers.

As a gunicorn config file (``gunicorn -c bench/locktrace.py``) it is ``config/gunicorn.conf.py`` (every
setting taken from it, the production ``post_worker_init`` included) plus a trace: each worker records, for
every booking that commits, when it sent the round trip that takes its rep locks and reads the pool's
bookings under them (``booking.services.locking.load_locked``), when that round trip returned, and when its
commit had returned (``transaction.on_commit``, so a little after PostgreSQL released the locks), and
writes them to ``$BENCH_LOCK_TRACE/<pid>.json`` when it exits. ``summary`` reads them back for a time
window. The grant itself happens inside the round trip, out of the client's sight: where bookings queue
for the same locks, a booking got them at the later of sending its round trip and the previous booking's
commit (a little earlier, in fact: the commit returns after the release).

PostgreSQL only: on SQLite ``load_locked`` takes no lock (the transaction itself is the lock).

Where every booking locks the same reps (one pool, all clients on the same starts) the bookings hold the
locks one after the other, so the mean time under the locks bounds the booking rate: about
1 / (that time) per second, whatever the number of workers. (Until 2026-12-06 the trace took the grant
as the moment the lock statement returned, before the reads under the locks, which then had round trips
of their own.)
"""

from __future__ import annotations

import json
import os
import runpy
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
globals().update({k: v for k, v in PRODUCTION.items() if not k.startswith("__")})
_production_post_worker_init = PRODUCTION["post_worker_init"]
EVENTS: list[tuple[float, float, float]] = []  # (sent, returned, committed) per booking


def post_worker_init(worker) -> None:
    _production_post_worker_init(worker)
    from django.db import transaction

    from booking.services import locking

    load = locking.load_locked

    def traced(calendars, **options):
        sent = time.time()
        state = load(calendars, **options)
        returned = time.time()
        transaction.on_commit(lambda: EVENTS.append((sent, returned, time.time())))
        return state

    locking.load_locked = traced


def worker_exit(server, worker) -> None:
    folder = os.environ.get("BENCH_LOCK_TRACE")
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(EVENTS))


def summary(folder: str, start: float, end: float) -> str:
    """The bookings whose locking round trip returned in [start, end], all locking the same reps: mean and
    median time under the locks (from the grant as the module docstring says to the commit), the part of it
    after the locking round trip, and how many waited for the booking before them."""
    found = [json.loads(path.read_text()) for path in Path(folder).glob("*.json")]
    events = sorted(
        (event for events in found for event in events if start <= event[1] <= end),
        key=lambda event: event[2],
    )
    if not events:
        return "no bookings traced"
    held, after, waited, previous = [], [], 0, start
    for sent, returned, done in events:  # in commit order: the order in which they held the locks
        waited += sent < previous
        held.append(done - max(sent, previous))
        after.append(done - returned)
        previous = done
    mean, median, tail = statistics.mean(held), statistics.median(held), statistics.mean(after)
    return (
        f"{len(events)} bookings under the rep locks for {mean * 1000:.2f} ms on average (median "
        f"{median * 1000:.2f} ms; {tail * 1000:.2f} ms after the round trip that takes them), {waited} "
        f"waited for the one before: one at a time, ~{1 / mean:.0f} bookings/s"
    )
