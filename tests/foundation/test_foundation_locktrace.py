"""bench/locktrace.py: the bench's gunicorn config is the production one, and its summary of the lock trace
(time under the rep locks per booking, share of the run during which some booking held them)."""

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


def test_summary_counts_the_window_and_the_union_of_the_holds(tmp_path):
    (tmp_path / "1.json").write_text(json.dumps([[10.000, 10.004], [10.006, 10.010], [9.0, 9.5]]))
    (tmp_path / "2.json").write_text(json.dumps([[10.003, 10.005], [12.0, 12.1]]))

    line = locktrace.summary(str(tmp_path), 10.0, 10.020)

    # three bookings granted in the window: 4, 4 and 2 ms; held over [10.000, 10.005] and [10.006, 10.010]
    assert line.startswith("3 bookings under the rep locks for 3.33 ms on average (median 4.00 ms)")
    assert "locks held 45 % of the run" in line
    assert line.endswith("~300 bookings/s")


def test_summary_without_bookings(tmp_path):
    assert locktrace.summary(str(tmp_path), 0.0, 1.0) == "no bookings traced"
