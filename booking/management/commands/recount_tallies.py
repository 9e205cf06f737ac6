"""``manage.py recount_tallies [--check]``: the fairness tallies (``booking.HostTally``) and the host rows.

Database triggers keep the tallies (``booking.triggers``); writes that bypass them leave them wrong: a
data-only restore with triggers disabled (``pg_restore --disable-triggers``), or ``loaddata`` of a dump that
holds ``booking.HostTally`` rows too (``dumpdata --exclude booking.HostTally`` leaves them out; the triggers
count the host rows as they load). ``--check`` reports and fails if they differ; without it the tallies are
rebuilt from the host rows, with the host rows locked against writes meanwhile (PostgreSQL).

``--check`` locks nothing and opens no write transaction: it reads both tables in one statement, one
snapshot (``triggers.tallies_kept_and_counted``). With the rebuild's table lock it made every booking,
cancellation and reschedule wait for it and, on a large database, fail with ``try_again`` past
``BOOKING_LOCK_TIMEOUT_MS`` for as long as it counted (a check run by monitoring, say)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from booking import triggers


class Command(BaseCommand):
    help = "Check (--check) or rebuild the fairness tallies from the booking host rows."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Only compare; fail if they differ")

    def handle(self, *args, check: bool, **options):
        if (
            check
        ):  # one statement: one snapshot, no lock (SQLite's transactions begin IMMEDIATE, a write lock)
            kept, counted = triggers.tallies_kept_and_counted(connection)
            if kept != counted:
                raise CommandError(
                    f"Fairness tallies differ from the host rows ({len(kept ^ counted)} rows); run "
                    "recount_tallies."
                )
            self.stdout.write(f"Fairness tallies match the host rows ({len(kept)} tally rows).")
            return
        with transaction.atomic():
            if connection.vendor == "postgresql":  # no host row written between the count and the tallies
                with connection.cursor() as cursor:
                    cursor.execute("LOCK TABLE booking_bookinghost IN SHARE ROW EXCLUSIVE MODE")
            kept, counted = triggers.tallies_kept_and_counted(connection)
            if kept == counted:
                self.stdout.write(f"Fairness tallies match the host rows ({len(kept)} tally rows).")
                return
            triggers.recount(connection)
            self.stdout.write(
                f"Fairness tallies rebuilt from the host rows ({len(kept ^ counted)} rows differed)."
            )
