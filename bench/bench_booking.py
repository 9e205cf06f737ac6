"""Benchmark: the booking API over real HTTP (gunicorn in a child process, as in production).

* slots: ``GET /api/v1/meeting-types/<slug>/slots`` for a 50-rep ``first_available`` pool over 14 days
  (each rep with working hours and busy time), median and p95 of sequential requests;
* the server: gunicorn with the production config (``config/gunicorn.conf.py``: its workers unless
  ``BENCH_WORKERS`` and ``BENCH_THREADS`` say otherwise, more options in ``BENCH_GUNICORN_ARGS``) and
  production settings (``DEBUG=0``, persistent database connections: ``BENCH_DB_OPTIONS``), as README
  "Production";
* create: ``POST …/bookings`` latency (median, p95) and bookings per second for 1 client and for 16
  concurrent clients, (a) all on that 50-rep pool (every booking locks all 50 reps: the worst case) and
  (b) on 16 separate 5-rep pools (one per client: what independent teams see), and (b) again with an
  ``Idempotency-Key`` on every request, as the booking page sends;
* afterwards a SQL self-join counts overlapping active bookings of one rep (must be 0);
* the time the 16 clients' bookings on the 50-rep pool spent under their rep locks (``bench/locktrace.py``:
  the server's config file is ``config/gunicorn.conf.py`` plus that trace): those bookings hold the same
  locks one after the other, so it bounds their rate.

The database is a throwaway one: a temporary SQLite file by default, or a new PostgreSQL database next to
the one named by ``DATABASE_URL=postgres://…`` (created and dropped here). The server enqueues outbox
messages to an in-memory Celery broker (as with a real broker, delivery happens outside the request); the
bench then delivers them with the sweep and times it. A last run repeats the one-client case without a
broker, where the outbox (emails with iCalendar invitations, locmem backend) runs in-process after each
commit inside the measured request, as in a default install without Redis. The server and the timing
client are in ``bench/harness.py``.

    .venv/bin/python bench/bench_booking.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton_book .venv/bin/python bench/bench_booking.py
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import SERVER, Client, fmt, gunicorn_conf, start_server, stop_server  # noqa: E402

REPS = 50
DAYS = 14
SLOT_REQUESTS = 30
CLIENTS = 16
PER_CLIENT = 25  # bookings per client in the 16-client runs (400 in all: a steady state, not just the ramp)
SINGLE_REQUESTS = 60
# The server's DATABASE_URL options README "Production" recommends (persistent connections, server-side
# binding, prepared statements); BENCH_DB_OPTIONS= (empty) gives Django's defaults (a connection per request).
DB_OPTIONS = os.environ.get(
    "BENCH_DB_OPTIONS", "conn_max_age=60&conn_health_checks=true&server_side_binding=true&prepare_threshold=2"
)
OVERLAP_SQL = """
SELECT count(*) FROM booking_bookinghost a JOIN booking_bookinghost b
ON a.rep_id = b.rep_id AND a.id < b.id AND a.active AND b.active
AND a.blocked_start < b.blocked_end AND b.blocked_start < a.blocked_end
"""


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        # production settings (README "Production"): DEBUG off (with it Django records every query)
        DEBUG=os.environ.get("BENCH_DEBUG", "0"),
        SECRET_KEY="bench-only-secret-key-not-for-production-use-" + "x7Qp2Lm9Zr4Tb8Kc",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        BOOKING_RATE_LIMIT="",
        API_READ_RATE_LIMIT="",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        LOG_LEVEL="WARNING",
        BOOKING_OUTBOX_GRACE_SECONDS="0",
        # a broker nobody consumes: requests only enqueue, as with a real broker and a worker; the
        # bench then delivers the outbox itself (the periodic sweep's code path); named with a host, as
        # settings require (kombu's "No hostname was supplied" otherwise)
        CELERY_BROKER_URL="memory://localhost/",
    )
    return env


# --- throwaway database


def make_database() -> tuple[str, callable]:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(url)
        name = f"{parts.path.lstrip('/') or 'baton'}_bench{os.getpid()}"
        parts = parts._replace(query="")  # Django options (the bench adds its own) mean nothing to psycopg
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop():
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return urlunsplit(parts._replace(path=f"/{name}")), drop
    folder = tempfile.mkdtemp(prefix="baton-bench-")
    path = Path(folder) / "bench.sqlite3"

    def remove():
        for f in Path(folder).glob("*"):
            f.unlink()
        Path(folder).rmdir()

    return f"sqlite:///{path}", remove


# --- data


def seed() -> dict:
    from booking.models import MeetingType
    from calendars.models import BusyInterval, WorkingHours
    from routing.models import Pool, PoolMember, Rep

    now = dt.datetime.now(dt.UTC)

    def reps(prefix: str, n: int) -> list:
        made = Rep.objects.bulk_create(
            [
                Rep(name=f"{prefix} {i}", email=f"{prefix}{i}@bench.example", timezone="Europe/Berlin")
                for i in range(n)
            ]
        )
        WorkingHours.objects.bulk_create(
            [
                WorkingHours(rep=r, weekday=d, start=dt.time(9), end=dt.time(17))
                for r in made
                for d in range(5)
            ]
        )
        busy = []
        for k, r in enumerate(made):  # two busy hours per rep per day, at varying times
            for day in range(DAYS + 2):
                base = (now + dt.timedelta(days=day)).replace(
                    hour=8 + (k + day) % 6, minute=0, second=0, microsecond=0
                )
                busy.append(BusyInterval(rep=r, start=base, end=base + dt.timedelta(hours=1)))
                later = base + dt.timedelta(hours=3)
                busy.append(BusyInterval(rep=r, start=later, end=later + dt.timedelta(hours=1)))
        BusyInterval.objects.bulk_create(busy)
        return made

    def pool(slug: str, members: list) -> MeetingType:
        p = Pool.objects.create(name=slug, slug=slug, strategy="first_available")
        PoolMember.objects.bulk_create([PoolMember(pool=p, rep=r, rank=i) for i, r in enumerate(members)])
        return MeetingType.objects.create(
            slug=slug,
            title=slug,
            duration_minutes=30,
            slot_interval_minutes=30,
            minimum_notice_minutes=60,
            horizon_days=DAYS + 7,
            pool=p,
        )

    big = pool("fa50", reps("big", REPS)).slug
    small = [pool(f"fa5-{c}", reps(f"s{c}-", 5)).slug for c in range(CLIENTS)]
    return {"big": big, "small": small, "warm": pool("warm", reps("warm", 5)).slug}


# --- client


def slot_starts(client: Client, slug: str) -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    end = today + dt.timedelta(days=DAYS - 1)
    status, body, _ = client.request(
        "GET", f"/api/v1/meeting-types/{slug}/slots?start={today}&end={end}&timezone=Europe/Berlin"
    )
    assert status == 200, body
    return [s["start"] for s in body["slots"]]


def book(client: Client, slug: str, start: str, n: int, *, keyed: bool = False):
    """One booking; ``keyed``: with an ``Idempotency-Key`` of its own, as the booking page sends."""
    return client.request(
        "POST",
        f"/api/v1/meeting-types/{slug}/bookings",
        {"start": start, "name": f"Bench {n}", "email": f"p{n}@bench.example", "timezone": "Europe/Berlin"},
        {"Idempotency-Key": uuid.uuid4().hex} if keyed else None,
    )


def run_clients(
    client: Client, jobs: list[list[tuple[str, str]]], *, keyed: bool = False
) -> tuple[list, float]:
    """Each inner list is one client's sequence of (slug, start); all clients start together."""
    barrier = threading.Barrier(len(jobs))
    results: list = []
    lock = threading.Lock()

    def worker(c: int) -> None:
        barrier.wait()
        for j, (slug, start) in enumerate(jobs[c]):
            status, body, elapsed = book(client, slug, start, c * 1000 + j, keyed=keyed)
            with lock:
                results.append((status, body.get("code"), elapsed))

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(len(jobs))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def report(label: str, results: list, wall: float) -> None:
    created = [r for r in results if r[0] == 201]
    codes: dict = {}
    for status, code, _ in results:
        key = f"{status}" + (f" {code}" if status != 201 else "")
        codes[key] = codes.get(key, 0) + 1
    print(
        f"{label:<44} {fmt([r[2] for r in results])}, {len(created) / wall:6.1f} bookings/s "
        f"({len(results)} requests in {wall:.2f} s: {codes})"
    )


WARM_ROUNDS = 4  # per server worker


def warm_up(client: Client, slug: str, workers: int, first: int) -> None:
    """Before anything is measured, ``WARM_ROUNDS`` × ``workers`` slots requests and bookings on a pool of
    their own (its starts from index ``first``), so that each worker has served both: a new worker's first
    requests open its database connection and prepare its statements (config/warmup.py pays the rest at
    start-up), which a server in its steady state has long done. Sync workers take connections in no fixed
    order, hence several rounds per worker."""
    starts = slot_starts(client, slug)
    for i in range(WARM_ROUNDS * workers):
        slot_starts(client, slug)
        status, body, _ = book(client, slug, starts[first + i], 900_000 + first + i)
        assert status == 201, body


def bench(port: int, data: dict, workers: int) -> list[float]:
    """The cases above; returns the time window of the 16 clients on the 50-rep pool."""
    from django.db import connection

    client = Client(port)
    warm_up(client, data["warm"], workers, 0)
    big, small = data["big"], data["small"]
    starts = slot_starts(client, big)
    print(f"{REPS}-rep first_available pool: {len(starts)} offered starts over {DAYS} days")
    for _ in range(3):  # this pool's own slots statements
        slot_starts(client, big)
    today = dt.datetime.now(dt.UTC).date()
    end = today + dt.timedelta(days=DAYS - 1)
    path = f"/api/v1/meeting-types/{big}/slots?start={today}&end={end}&timezone=Europe/Berlin"
    latencies = [client.request("GET", path)[2] for _ in range(SLOT_REQUESTS)]
    print(f"{'slots, 50 reps x 14 days, 1 client':<44} {fmt(latencies)} ({SLOT_REQUESTS} requests)")

    # one client, 50-rep pool: consecutive starts (each start takes up to 50 bookings)
    single = [[(big, starts[i % len(starts)]) for i in range(SINGLE_REQUESTS)]]
    report("create, 50-rep pool, 1 client", *run_clients(client, single))
    # 16 clients on the 50-rep pool: all hit the same few starts together (contention on all 50 locks)
    later = starts[len(starts) // 2 :]
    jobs = [[(big, later[j % len(later)]) for j in range(PER_CLIENT)] for _ in range(CLIENTS)]
    window = [time.time()]
    report(f"create, 50-rep pool, {CLIENTS} clients", *run_clients(client, jobs))
    window.append(time.time())
    # 16 clients, each on its own 5-rep pool
    small_starts = slot_starts(client, small[0])
    report("create, 5-rep pool, 1 client", *run_clients(client, [[(small[0], s) for s in small_starts[:30]]]))
    jobs = [[(slug, small_starts[40 + j]) for j in range(PER_CLIENT)] for slug in small[1:]] + [
        [(small[0], small_starts[40 + j]) for j in range(PER_CLIENT)]
    ]
    report(f"create, 16 pools of 5 reps, {CLIENTS} clients", *run_clients(client, jobs))
    # the same with an Idempotency-Key on every request, as the booking page sends (other starts)
    offset = 40 + PER_CLIENT
    jobs = [[(slug, small_starts[offset + j]) for j in range(PER_CLIENT)] for slug in small]
    report(f"create, 16 pools of 5 reps, {CLIENTS} clients, key", *run_clients(client, jobs, keyed=True))

    with connection.cursor() as cursor:
        cursor.execute(OVERLAP_SQL)
        overlaps = cursor.fetchone()[0]
    from booking.models import Booking

    print(f"bookings: {Booking.objects.count()}, overlapping active host rows: {overlaps}")
    if overlaps:
        raise SystemExit("DOUBLE BOOKING")
    return window


def deliver_outbox() -> None:
    from django.core import mail

    from booking import outbox
    from booking.models import OutboxMessage

    pending = OutboxMessage.objects.filter(status="pending").count()
    started = time.perf_counter()
    totals: dict = {}
    while True:
        done = outbox.sweep(limit=200)
        if not done:
            break
        for key, n in done.items():
            totals[key] = totals.get(key, 0) + n
    wall = time.perf_counter() - started
    emails = len(getattr(mail, "outbox", []))
    print(
        f"outbox: {pending} pending messages delivered by the sweep in {wall:.2f} s "
        f"({pending / wall:.0f}/s): {totals}; emails sent: {emails}"
    )


def eager_single(env: dict, data: dict, workers: int) -> None:
    eager = {k: v for k, v in env.items() if k != "CELERY_BROKER_URL"}
    server, port = start_server(eager)
    try:
        client = Client(port)
        warm_up(client, data["warm"], workers, WARM_ROUNDS * workers)
        starts = slot_starts(client, data["small"][1])
        jobs = [[(data["small"][1], s) for s in starts[-30:]]]
        report("create, 5-rep pool, 1 client, eager outbox", *run_clients(client, jobs))
    finally:
        stop_server(server)


def main() -> None:
    database_url, cleanup = make_database()
    env = _env(database_url)
    os.environ.update(env)
    if database_url.startswith("postgres") and DB_OPTIONS:  # the server's connections, as in production
        env["DATABASE_URL"] = f"{database_url}?{DB_OPTIONS}"
    server = None
    traces = tempfile.TemporaryDirectory(prefix="baton-bench-locks-")
    env["BENCH_LOCK_TRACE"] = traces.name
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        data = seed()
        connection.close()
        server, port = start_server(env)
        if SERVER == "threaded":
            label, workers = "threaded WSGI", 1
        else:
            conf = gunicorn_conf()
            label = f"gunicorn {conf['workers']} {conf['worker_class']} workers x {conf['threads']} threads"
            workers = conf["workers"]
        options = (DB_OPTIONS or "a connection per request") if connection.vendor == "postgresql" else "file"
        print(
            f"database: {connection.vendor} ({options}); server: {label} "
            f"on 127.0.0.1:{port}, DEBUG={env['DEBUG']}"
        )
        window = bench(port, data, workers)
        stop_server(server)
        server = None
        if SERVER != "threaded" and connection.vendor == "postgresql":  # SQLite: no rep locks to trace
            from bench.locktrace import summary

            print(f"{'create, 50-rep pool, 16 clients: locks':<44} {summary(traces.name, *window)}")
        deliver_outbox()
        eager_single(env, data, workers)
    finally:
        stop_server(server)
        from django.db import connections

        connections.close_all()
        cleanup()
        traces.cleanup()


if __name__ == "__main__":
    main()
