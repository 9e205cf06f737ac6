"""``manage.py demo``: load demo/baton.yaml (reps, hours, one pool per strategy, meeting types) and demo
busy times around "now". Safe to run again (``make run`` runs it at every start): once the demo's pools exist
the file is not imported again (an admin's changes to the demo stand; ``--reset`` imports it again), and the
demo busy rows (``external_id`` starting ``demo:``) are replaced, never duplicated."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from booking.models import Booking, BookingHost
from calendars.models import BusyInterval
from routing.configfile import ConfigInvalid, load_document
from routing.management.commands.import_config import import_file
from routing.models import Pool, Rep

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "baton.yaml"
DEMO_PREFIX = "demo:"
DEMO_DAYS = 21
# Local (start hour, start minute, minutes) blocks the demo reps' calendars are busy with.
BLOCKS = [(10, 0, 60), (13, 0, 30), (14, 30, 90), (11, 0, 30), (16, 0, 60)]


def demo_busy_rows(reps: list[Rep], *, now: dt.datetime) -> list[BusyInterval]:
    """A deterministic pattern of one or two meetings per working day per rep, from today for DEMO_DAYS."""
    rows = []
    for i, rep in enumerate(sorted(reps, key=lambda r: r.email)):
        zone = ZoneInfo(rep.timezone)
        today = now.astimezone(zone).date()
        for d in range(DEMO_DAYS):
            day = today + dt.timedelta(days=d)
            if day.weekday() >= 5:
                continue
            picks = [BLOCKS[(i + d) % len(BLOCKS)]]
            if (3 * i + d) % 4 == 0:
                picks.append(BLOCKS[(i + d + 2) % len(BLOCKS)])
            for n, (hour, minute, minutes) in enumerate(picks):
                start = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone).astimezone(dt.UTC)
                rows.append(
                    BusyInterval(
                        rep=rep,
                        start=start,
                        end=start + dt.timedelta(minutes=minutes),
                        source=BusyInterval.Source.MANUAL,
                        external_id=f"{DEMO_PREFIX}{rep.pk}:{day.isoformat()}:{n}",
                    )
                )
    return rows


def demo_busy_replace(*, emails: list[str], now: dt.datetime) -> int:
    """Replace the demo busy rows of the demo reps; returns how many were written. A demo block is left out
    where its rep already hosts a meeting (booked on an earlier day's demo: ``make run`` loads the demo at
    every start, and the pattern moves with the date), so it never sits on a real booking."""
    with transaction.atomic():
        BusyInterval.objects.filter(external_id__startswith=DEMO_PREFIX).delete()
        rows = demo_busy_rows(list(Rep.objects.filter(email__in=emails)), now=now)
        booked: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
        hosting = BookingHost.objects.filter(
            rep_id__in={row.rep_id for row in rows},
            active=True,
            booking__status=Booking.Status.CONFIRMED,
            blocked_end__gt=min((row.start for row in rows), default=now),  # today's earlier hours too
        )
        for rep_id, start, end in hosting.values_list("rep_id", "blocked_start", "blocked_end"):
            booked.setdefault(rep_id, []).append((start, end))
        rows = [
            row
            for row in rows
            if not any(start < row.end and row.start < end for start, end in booked.get(row.rep_id, ()))
        ]
        BusyInterval.objects.bulk_create(rows)
    return len(rows)


class Command(BaseCommand):
    help = "Load the demo configuration (demo/baton.yaml) and demo busy times; safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--file", default=str(DEMO_FILE), help="Demo config file (default: %(default)s)")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Import the file again even when the demo is loaded (undoes changes made to the demo since)",
        )

    def handle(self, *args, file: str, reset: bool = False, **options):
        try:
            document = load_document(Path(file).read_text(encoding="utf-8"), filename=file)
        except (OSError, UnicodeDecodeError, ConfigInvalid):
            document = None  # not loaded then: the import says what is wrong with the file
        pools = document.get("pools") if isinstance(document, dict) else None
        slugs = (
            [pool.get("slug") for pool in pools if isinstance(pool, dict)] if isinstance(pools, list) else []
        )
        if not reset and Pool.objects.filter(slug__in=slugs).exists():
            # loaded before: the admin may have changed it since (``make run`` runs this at every start)
            summary = "already loaded, left as it is (--reset imports the file again)"
        else:
            try:
                changes = import_file(file)
            except ConfigInvalid as exc:
                for line in exc.errors:
                    self.stderr.write(line)
                raise CommandError(f"{file}: {len(exc.errors)} problem(s); nothing was written") from None
            summary = f"{len(changes)} change(s)" if changes else "no changes (already loaded)"
        emails = [rep["email"] for rep in document.get("reps") or []]
        busy = demo_busy_replace(emails=emails, now=timezone.now())
        self.stdout.write(
            self.style.SUCCESS(f"Demo configuration: {summary}; {busy} demo busy intervals (re)written.")
        )
        self.stdout.write(f"Landing page: {settings.BASE_URL}/")
