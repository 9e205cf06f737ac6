"""``manage.py learn_account_owners``: fill unowned accounts from booking history (leads.accounts)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from leads.accounts import accounts_learn_owners


class Command(BaseCommand):
    help = "Give unowned company domains the rep who hosted most of their bookings (marked as learned)."

    def handle(self, *args, **options):
        self.stdout.write(f"{accounts_learn_owners()} account(s) learned")
