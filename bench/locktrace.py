"""How long bookings hold their rep locks, measured in the bench's gunicorn workers.

As a gunicorn config file (``gunicorn -c bench/locktrace.py``) it is ``config/gunicorn.conf.py`` (every
setting taken from it, the production ``post_worker_init`` included) plus a trace: each worker records, for
every booking that commits, when its rep locks were granted (``booking.services.locking.load_locked``
returned, so after the round trip that takes them and reads the pool's bookings under them) and when its
commit had returned (``transaction.on_commit``, so a little after PostgreSQL released the locks), and
writes them to ``$BENCH_LOCK_TRACE/<pid>.json`` when it exits. ``summary`` reads them
back for a time window.

PostgreSQL only: on SQLite ``load_locked`` takes no lock (the transaction itself is the lock).

Where every booking locks the same reps (one pool, all clients on the same starts) the bookings hold the
locks one after the other, so the mean time under the locks bounds the booking rate: about
1 / (that time) per second, whatever the number of workers.
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
EVENTS: list[tuple[float, float]] = []


def post_worker_init(worker) -> None:
    _production_post_worker_init(worker)
    from django.db import transaction

    from booking.services import locking

    load = locking.load_locked

    def traced(calendars, **options):
        state = load(calendars, **options)
        granted = time.time()
        transaction.on_commit(lambda: EVENTS.append((granted, time.time())))
        return state

    locking.load_locked = traced


def worker_exit(server, worker) -> None:
    folder = os.environ.get("BENCH_LOCK_TRACE")
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(EVENTS))


def summary(folder: str, start: float, end: float) -> str:
    """The bookings whose locks were granted in [start, end]: mean and median time under the locks, and the
    share of the window during which some booking held them."""
    events = sorted(
        (granted, done)
        for path in Path(folder).glob("*.json")
        for granted, done in json.loads(path.read_text())
        if start <= granted <= end
    )
    if not events:
        return "no bookings traced"
    held, covered, reach = [done - granted for granted, done in events], 0.0, start
    for granted, done in events:  # the union of the intervals
        covered += max(0.0, done - max(granted, reach))
        reach = max(reach, done)
    mean, share = statistics.mean(held), covered / (end - start) * 100
    return (
        f"{len(events)} bookings under the rep locks for {mean * 1000:.2f} ms on average (median "
        f"{statistics.median(held) * 1000:.2f} ms), locks held {share:.0f} % of the run: one at a time, "
        f"~{1 / mean:.0f} bookings/s"
    )
