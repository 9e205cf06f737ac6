"""The HTTP side of ``bench_booking.py``: the server in a child process (gunicorn with the production config,
or Django's threaded WSGI server) and a client whose requests time themselves.

``BENCH_SERVER=threaded`` picks Django's server; ``BENCH_WORKERS``/``BENCH_THREADS`` override the gunicorn
config's worker count and threads, and ``BENCH_GUNICORN_ARGS`` adds options.

    python bench/harness.py <port>     # Django's threaded server (what BENCH_SERVER=threaded runs)
"""

from __future__ import annotations

import http.client
import json
import os
import runpy
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_SERVER", "gunicorn")
WORKERS = os.environ.get("BENCH_WORKERS", "")  # empty: as config/gunicorn.conf.py says
THREADS = os.environ.get("BENCH_THREADS", "")


class Client:
    """HTTP/1.1 client with one connection per thread, kept alive as long as the server keeps it (gthread
    workers do, as for a browser; sync workers close it after each response, as behind a proxy that opens a
    connection per request upstream, and the next request's connect is inside its measured time). A GET on
    a connection the server closed meanwhile is sent again once; a POST is never re-sent (the server may
    have booked it): POSTs run in fresh client threads with no idle gaps."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return conn

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[int, dict, float]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {**({"Content-Type": "application/json"} if data else {}), **(headers or {})}
        started = time.perf_counter()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self.local.conn = None
                if attempt == 2 or method != "GET":
                    raise
                started = time.perf_counter()
        elapsed = time.perf_counter() - started
        if response.will_close:
            conn.close()
            self.local.conn = None
        return response.status, json.loads(payload or b"{}"), elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(latencies: list[float]) -> str:
    ms = [v * 1000 for v in latencies]
    return f"median {statistics.median(ms):6.1f} ms, p95 {pct(ms, 0.95):6.1f} ms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict) -> tuple[subprocess.Popen, int]:
    """gunicorn (the production server, see README) with config/gunicorn.conf.py (by way of
    bench/locktrace.py, which adds the lock trace) and the bench's overrides; ``BENCH_SERVER=threaded``
    uses Django's single-process threaded WSGI server instead."""
    if SERVER == "threaded":
        server = subprocess.Popen(
            [sys.executable, __file__, "0"], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        line = server.stdout.readline().split()
        if not line or line[0] != "ready":
            server.kill()
            raise SystemExit("the benchmark server did not start")
        return server, int(line[1])
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [str(gunicorn), "-c", "bench/locktrace.py", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        + ["--log-level", "warning"]
        + os.environ.get("BENCH_GUNICORN_ARGS", "").split(),
        env={**env, **server_overrides()},
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            Client(port).request("GET", "/api/v1/meeting-types")
            return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the benchmark server did not start")


def server_overrides() -> dict:
    """``BENCH_WORKERS``/``BENCH_THREADS`` as the environment variables config/gunicorn.conf.py reads."""
    return {k: v for k, v in (("WEB_CONCURRENCY", WORKERS), ("GUNICORN_THREADS", THREADS)) if v}


def gunicorn_conf() -> dict:
    """What config/gunicorn.conf.py gives the bench's server."""
    saved = dict(os.environ)
    os.environ.update(server_overrides())
    try:
        conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return conf


def stop_server(server: subprocess.Popen | None) -> None:
    if server is not None:
        server.terminate()
        server.wait(10)


def serve(port: int) -> None:
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", port), QuietHandler)
    server.set_app(WSGIHandler())
    print("ready", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    serve(int(sys.argv[1]))
