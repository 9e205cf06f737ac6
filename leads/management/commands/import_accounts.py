"""``manage.py import_accounts FILE``: create or update accounts from a CSV (see leads.accounts)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from leads.accounts import AccountImportError, accounts_import


class Command(BaseCommand):
    help = "Import accounts (domain, name, crm_id, owner_email) from a CSV file in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, **options):
        try:
            with open(options["file"], newline="", encoding="utf-8-sig") as handle:
                summary = accounts_import(handle)
        except OSError as exc:
            raise CommandError(f"{options['file']}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{options['file']}: not UTF-8 text (save the CSV as UTF-8)") from None
        except AccountImportError as exc:
            raise CommandError("\n".join(exc.errors)) from None
        self.stdout.write("{created} created, {updated} updated, {unchanged} unchanged".format(**summary))
