"""Helpers for the concurrency tests: release N threads together through a barrier, each with its own
database connection (closed at the end)."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

import psycopg
from django.db import connection, connections
from django.test import Client

from booking.services import locking


def run_together(n: int, fn, *, timeout: float = 60.0) -> list:
    """Run ``fn(i)`` in ``n`` threads released together; returns results (exceptions as values)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    return results


def post_json(url: str, data: dict, headers: dict | None = None):
    response = Client().post(url, data, content_type="application/json", headers=headers or {})
    return response.status_code, response.json()


def status_counts(results) -> Counter:
    return Counter(r[0] if isinstance(r, tuple) else type(r).__name__ for r in results)


@contextmanager
def lock_held_elsewhere(rep_id: int):
    """A connection of its own holding rep ``rep_id``'s booking lock until it commits (or the block ends)."""
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k)}
    with psycopg.connect(**dsn) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [locking.NAMESPACE | rep_id])
        yield other
