"""The booking race on SQLite: a file database shared by threads (run in a subprocess, since the test
database is in memory). IMMEDIATE transactions serialise writers: still no double booking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("booking_sqlite_race.py")


def test_no_double_booking_on_sqlite_file_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "race.sqlite3")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=SCRIPT.parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["single_rep_rounds"] == [{"201": 1, "409": 19}] * 3
    assert out["first_available_3"] == {"201": 3, "409": 17}
    assert out["fa_hosts"] == out["fa_reps"]
    assert out["overlaps"] == []
