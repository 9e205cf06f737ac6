"""Celery without a broker: eager tasks run quietly in-process, and a worker or beat refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import signals

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def _no_broker_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path}/c.db")
    return env


def test_eager_task_logs_no_broker_warning(tmp_path):
    # a fresh process: kombu warns once per process, when its producer pool makes its first connection
    code = (
        "import django; django.setup()\n"
        "from booking.tasks import deliver_outbox_messages\n"
        "print(deliver_outbox_messages.apply_async(([],)).get())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**_no_broker_env(tmp_path), "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{}"  # ran in-process, eagerly
    assert result.stderr == ""  # nothing at WARNING or above (kombu said "No hostname was supplied …")


# Celery's Django fixup also hears these signals, and warns that they came without a worker
@pytest.mark.filterwarnings("ignore::celery.fixups.django.FixupWarning")
@pytest.mark.parametrize("signal,role", [(signals.worker_init, "worker"), (signals.beat_init, "beat")])
def test_worker_and_beat_stop_without_a_broker(signal, role, monkeypatch):
    assert app.conf.task_always_eager  # the test settings have no broker
    with pytest.raises(SystemExit, match=f"a Celery {role} has no broker"):
        signal.send(sender=None)
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    signal.send(sender=None)  # with a broker: nothing to say


def test_celery_worker_command_exits_with_the_reason(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"],
        cwd=ROOT,
        env=_no_broker_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CELERY_BROKER_URL is not set" in result.stderr
