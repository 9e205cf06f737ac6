"""gunicorn settings for production: ``gunicorn -c config/gunicorn.conf.py config.wsgi`` (``make bench``
serves the API with them). Command-line options override them (e.g. ``--bind 0.0.0.0:8000``).

* Workers (default): ``sync`` processes, ``WEB_CONCURRENCY`` of them (default 2 × CPUs + 1, gunicorn's own
  advice). A sync worker takes one request at a time and accepts a connection from the one shared socket
  only when it is idle, so a request never queues behind a busy process while another one idles, and no two
  requests of a process take turns on its GIL. Like every sync deployment this one belongs behind a
  buffering reverse proxy (nginx with its default ``proxy_buffering``/``proxy_request_buffering``, HAProxy,
  a cloud load balancer that buffers): a slow client would otherwise hold a worker. The proxy keeps the
  browsers' connections alive; gunicorn answers each request on a connection of its own.
  Measured with ``make bench``'s 16 clients on 16 pools (the same hour, alternating, 5 rounds of 3 runs,
  2026-12-04 20:32–20:36 UTC): p95 104–170 ms (median 129) with 3 gthread workers × 4 threads against
  70–107 ms (median 89) with 5 sync workers, at 170–239 against 188–276 bookings/s.
* ``GUNICORN_THREADS`` > 1 switches to ``gthread`` workers (default count CPUs + 1), for a server that
  faces clients directly or sits behind a proxy that does not buffer: threads hold kept-alive connections
  and slow clients cheaply. Each such worker then listens on its own ``SO_REUSEPORT`` socket and the kernel
  spreads new connections across them; on one shared socket the first worker to wake accepted a burst of
  kept-alive connections and served most requests on one core (116 against 137 bookings/s, 4 runs each,
  2026-12-03).
* ``post_worker_init``: manage tokens are redacted from the access log's request lines, if one is kept
  (``config.logfilters``); ``config.warmup.warm()`` pays the worker's one-time costs (URLconf, validators'
  regular expressions, time zones, the Celery app) before it serves, and then ``gc.freeze()`` moves what is
  loaded so far (modules, URL patterns, models) out of the garbage collector's reach, so its full
  collections no longer walk them in the middle of a request (slowest of 30 slots requests 150–166 ms without,
  68–80 ms with, 3 runs each, 2026-12-03).
"""

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from config.env import env_int  # noqa: E402  (after the project root is on the path)

CPUS = os.cpu_count() or 1
threads = env_int("GUNICORN_THREADS", 1, minimum=1)
if threads == 1:
    worker_class = "sync"
    workers = env_int("WEB_CONCURRENCY", 2 * CPUS + 1, minimum=1)
else:
    worker_class = "gthread"
    workers = env_int("WEB_CONCURRENCY", CPUS + 1, minimum=1)
    reuse_port = True


def post_worker_init(worker) -> None:
    import logging

    from config.logfilters import RedactTokens
    from config.warmup import warm

    # an access log (``--access-logfile``) writes every request line: manage tokens redacted there too
    logging.getLogger("gunicorn.access").addFilter(RedactTokens())
    warm()
    gc.freeze()
