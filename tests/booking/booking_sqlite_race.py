"""Run by test_booking_sqlite_concurrency in a subprocess: the booking race on a SQLite FILE database
(threads share it; the in-memory test database cannot show this). Prints a JSON summary.

Usage: python tests/booking/booking_sqlite_race.py /tmp/some.sqlite3
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = f"sqlite:///{sys.argv[1]}"
os.environ.setdefault("DEBUG", "1")
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
os.environ.pop("CELERY_BROKER_URL", None)

import django  # noqa: E402

django.setup()

import time_machine  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from booking.models import BookingHost  # noqa: E402
from tests.booking.booking_factories import NOW, body, make_meeting_type, make_pool, make_rep  # noqa: E402
from tests.booking.booking_race import post_json, run_together, status_counts  # noqa: E402
from tests.conftest import OVERLAP_SQL  # noqa: E402


def main() -> None:
    settings.BOOKING_RATE_LIMIT = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    out = {}
    with time_machine.travel(NOW, tick=True):
        solo = make_meeting_type(make_pool("round_robin", [make_rep("Solo")]), slug="solo")
        rounds = []
        for n in range(3):
            start = f"2026-03-03T1{n}:00:00+01:00"
            results = run_together(
                20, lambda i, s=start: post_json("/api/v1/meeting-types/solo/bookings", body(s, answers={}))
            )
            rounds.append(dict(status_counts(results)))
        out["single_rep_rounds"] = rounds
        reps = [make_rep(f"R{i}") for i in range(3)]
        make_meeting_type(make_pool("first_available", reps), slug="fa")
        results = run_together(20, lambda i: post_json("/api/v1/meeting-types/fa/bookings", body(answers={})))
        out["first_available_3"] = dict(status_counts(results))
        out["fa_hosts"] = sorted(
            BookingHost.objects.filter(active=True, booking__meeting_type__slug="fa").values_list(
                "rep_id", flat=True
            )
        )
        out["fa_reps"] = sorted(r.pk for r in reps)
        del solo
    with connection.cursor() as cursor:
        cursor.execute(OVERLAP_SQL)
        out["overlaps"] = cursor.fetchall()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
