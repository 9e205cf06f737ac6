"""What an operator hits running Baton: a Celery worker outlives a Redis restart and consumes again, and
the commands that read files or take a horizon say what is wrong instead of a traceback. Each test failed
before its fix."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from routing.models import Rep
from tests.foundation.conftest import run, simulate_synthetic

ROOT = Path(__file__).resolve().parents[2]


# --- 1. A Celery worker outlives a Redis restart --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis(port: int, tmp_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("redis-server did not start")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_celery_worker_survives_a_short_redis_restart(tmp_path):
    """docs/booking-api.md: "a worker or broker that is down delays" the e-mails. With one broker retry
    (``CELERY_BROKER_CONNECTION_MAX_RETRIES = 1``, meant to make web publishing fail fast) a Redis restart
    of a few seconds made every worker exit ("Unrecoverable error"), and nothing was consumed again until
    someone restarted them. Workers now reconnect; publishing fails fast by its own retry policy."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path}/w.db",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0",
    )
    log = tmp_path / "worker.log"
    redis = _redis(port, tmp_path)
    worker = None
    try:
        with open(log, "w") as out:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=solo",
                    "-l",
                    "info",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        assert "ready." in log.read_text()
        _stop(redis)  # Redis restarts (an upgrade, a failover, a host reboot): down for ~6 seconds
        time.sleep(6)
        redis = _redis(port, tmp_path)
        time.sleep(6)
        tail = "\n".join(
            line for line in log.read_text().splitlines() if "ERROR" in line or "CRITICAL" in line
        )
        assert worker.poll() is None, (
            f"the worker exited (code {worker.returncode}) after Redis restarted:\n{tail}"
        )
        send = "from config.celery import app; app.send_task('calendars.sync_due')"
        subprocess.run([sys.executable, "-c", send], cwd=ROOT, env=env, check=True, timeout=60)
        deadline = time.monotonic() + 30
        while "calendars.sync_due" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "calendars.sync_due" in log.read_text(), "the worker consumes nothing after the restart"
    finally:
        _stop(worker)
        _stop(redis)


# --- 2. A config file that is not UTF-8: a clear error, not a traceback ----------------------------------


@pytest.fixture
def latin1_config(tmp_path) -> Path:
    path = tmp_path / "reps.yaml"
    # "Ana Álvarez" saved by an editor in Latin-1 / Windows-1252 (a common export from spreadsheets)
    text = "version: 1\nreps:\n  - {name: Ana \u00c1lvarez, email: ana@example.com, timezone: UTC}\n"
    path.write_bytes(text.encode("latin-1"))
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["import_config", "demo"])
def test_a_config_file_that_is_not_utf8_is_a_clear_error(command, latin1_config):
    """A Latin-1 file was a UnicodeDecodeError traceback (``import_file`` caught only OSError); it is one
    problem named with its path now, as import_accounts says of a CSV, and nothing is written."""
    err = StringIO()
    args, options = (
        ([str(latin1_config)], {}) if command == "import_config" else ([], {"file": str(latin1_config)})
    )
    with pytest.raises(CommandError, match="1 problem"):
        call_command(command, *args, stdout=StringIO(), stderr=err, **options)
    assert f"{latin1_config}: not UTF-8 text (save the file as UTF-8)" in err.getvalue()
    assert not Rep.objects.exists()


def test_simulate_routing_with_a_non_utf8_candidate_is_a_clear_error(demo, latin1_config):
    """A Latin-1 candidate file was a UnicodeDecodeError traceback."""
    with pytest.raises(CommandError, match="UTF-8"):
        run(
            "simulate_routing",
            "fast-lane",
            "--start",
            "2026-02-01",
            "--end",
            "2026-03-01",
            "--candidate",
            str(latin1_config),
            "--no-progress",
        )


# --- 3. simulate_routing --hours past the calendar -------------------------------------------------------


def test_simulate_routing_with_too_many_hours_is_a_clear_error(demo):
    """--start is checked against the years Baton handles; --hours was not, and 1e9 (a typo for 1e3)
    escaped as "OverflowError: date value out of range"."""
    with pytest.raises(CommandError, match="--hours"):
        simulate_synthetic(rate="5", hours="1e9")
