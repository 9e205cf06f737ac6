"""bench/locktrace.py: the bench's gunicorn config is the production one, and its summary of the lock trace
(time under the rep locks per booking, and how many bookings waited for the one before)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from bench import locktrace

ROOT = Path(__file__).resolve().parents[2]


def test_every_production_setting_is_kept():
    production = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    for name in ("workers", "worker_class", "threads"):
        assert getattr(locktrace, name) == production[name]
    warm = locktrace._production_post_worker_init.__code__
    assert warm.co_filename.endswith("config/gunicorn.conf.py") and warm.co_name == "post_worker_init"
    assert locktrace.post_worker_init.__code__.co_filename.endswith("bench/locktrace.py")  # wraps it


def test_summary_takes_the_grant_from_the_previous_commit_where_a_booking_queued(tmp_path):
    # (sent, returned, done) of the round trip that takes the locks and of the commit, per booking
    (tmp_path / "1.json").write_text(
        json.dumps([[10.000, 10.001, 10.004], [10.009, 10.010, 10.011], [9.0, 9.1, 9.5]])
    )
    (tmp_path / "2.json").write_text(json.dumps([[10.001, 10.005, 10.008], [12.0, 12.05, 12.1]]))

    line = locktrace.summary(str(tmp_path), 10.0, 10.020)

    # three bookings in the window, in commit order: the first holds from 10.000 (4 ms); the second was sent
    # at 10.001 while the first held the locks, so it got them at the first's commit, 10.004 (4 ms); the
    # third was sent after the second's commit (2 ms). After their round trips: 3, 3 and 1 ms.
    assert line.startswith(
        "3 bookings under the rep locks for 3.33 ms on average (median 4.00 ms; 2.33 ms after"
    )
    assert "1 waited for the one before" in line
    assert line.endswith("~300 bookings/s")


def test_summary_without_bookings(tmp_path):
    assert locktrace.summary(str(tmp_path), 0.0, 1.0) == "no bookings traced"
