"""config.warmup: a new web worker pays its one-time costs before its first request."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config import warmup

ROOT = Path(__file__).resolve().parents[2]

# What a new process has done once Django is set up, before and after warm(): a fresh interpreter, since
# the test session has long imported the URLconf and touched the rest.
PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.core.validators import EmailValidator
from django.utils.functional import empty
import routing.validators
from config.celery import app

def state():
    return {
        "urlconf": "config.urls" in sys.modules and "booking.api.views" in sys.modules,
        "email regex": EmailValidator.domain_regex._wrapped is not empty,
        "time zones": routing.validators._ZONES is not None,
        "celery": app.finalized,
    }

before = state()
from config.warmup import warm
took = warm()
print(json.dumps({"before": before, "after": state(), "took": took}))
"""


def _env(tmp_path, **extra) -> dict:
    unset = ("DATABASE_URL", "CELERY_BROKER_URL", "WEB_CONCURRENCY", "GUNICORN_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path}/warm.sqlite3", **extra)
    return env


def test_warm_does_in_a_new_process_what_the_first_request_would(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=_env(tmp_path, LOG_LEVEL="WARNING"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not any(report["before"].values()), report["before"]  # the probe can see the difference
    assert all(report["after"].values()), report["after"]
    assert set(report["took"]) == set(warmup.STEPS)


def test_a_failing_step_is_logged_and_the_others_still_run(monkeypatch, caplog):
    ran = []

    def broken():
        raise RuntimeError("no broker")

    monkeypatch.setattr(warmup, "STEPS", {"broken": broken, "fine": lambda: ran.append("fine")})
    with caplog.at_level(logging.INFO, logger="baton.warmup"):
        took = warmup.warm()
    assert list(took) == ["fine"] and ran == ["fine"]
    assert "warm-up step 'broken' failed" in caplog.text and "no broker" in caplog.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_serves_with_the_production_config_and_warms_each_worker(tmp_path):
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [str(gunicorn), "-c", "config/gunicorn.conf.py", "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    args += ["--access-logfile", "-"]  # kept, the access log has manage tokens redacted
    token = "Q3ZbV0s9n2yXk4pL8mT1rW6uE5aD7fG"
    with log.open("w") as out:
        server = subprocess.Popen(
            args, env=_env(tmp_path, WEB_CONCURRENCY="2", LOG_LEVEL="INFO"), cwd=ROOT, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("worker warmed up") < 2:
            assert server.poll() is None, log.read_text()
            if time.monotonic() > deadline:
                pytest.fail(f"the workers did not warm up:\n{log.read_text()}")
            time.sleep(0.1)
        # no database needed: the API's catch-all 404, asked on an HTTP/1.1 connection the client would keep
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/v1/no-such-thing")
            response = conn.getresponse()
            assert response.status == 404
            assert json.loads(response.read())["code"]
            assert response.will_close  # a sync worker: one request per connection (the proxy keeps clients')
        finally:
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", f"/api/v1/bookings/{token}/no-such-thing")
            assert conn.getresponse().status == 404
        finally:
            conn.close()
        while "/api/v1/bookings/<token>/no-such-thing" not in log.read_text():
            assert time.monotonic() < deadline + 30, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(30)
    assert "Traceback" not in log.read_text()
    assert token not in log.read_text()
