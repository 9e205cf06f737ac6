"""gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py config.wsgi`` (``make bench``
serves the API with them). Command-line options override them (e.g. ``--bind 0.0.0.0:8000``).

* ``WEB_CONCURRENCY``: worker processes (default: CPUs + 1). Python's GIL makes one process one core, so
  several processes are what uses the machine; threads overlap a request's database round trips.
* ``GUNICORN_THREADS``: threads per worker (default 4), ``gthread`` workers.
* ``reuse_port``: every worker listens on its own ``SO_REUSEPORT`` socket and the kernel spreads new
  connections across them. On one shared socket the first worker to wake accepts a burst of connections,
  and with kept-alive connections (browsers, proxies) one process then serves most requests on one core
  while the others idle: measured with ``make bench``'s 16 clients, one of 3 workers used 2.1–3.3 s of CPU
  in a 3–4 s run, the others 0.4–1.0 s, and throughput was 116/s on average against 137/s with this option
  (4 runs each, 2026-12-03).
* ``post_worker_init``: once a worker has loaded Django, ``gc.freeze()`` moves what is loaded so far (the
  app's modules, URL patterns, models) out of the garbage collector's reach, so its full collections no
  longer walk them in the middle of a request. Measured on the 50-rep slots page, 30 requests per run: the
  slowest took 150–166 ms in 3 runs without it, 68–80 ms in 3 runs with it; medians unchanged (2026-12-03).
"""

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from config.env import env_int  # noqa: E402  (after the project root is on the path)

workers = env_int("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1, minimum=1)
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 4, minimum=1)
reuse_port = True


def post_worker_init(worker) -> None:
    gc.freeze()
