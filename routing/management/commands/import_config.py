"""``manage.py import_config FILE``: create or update reps, hours, pools and meeting types from YAML/JSON."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.configfile import ConfigInvalid, config_import, load_document, parse_config


def import_file(path: str | Path, *, dry_run: bool = False) -> list[str]:
    """Read, check and apply one config file; ``ConfigInvalid`` lists every problem, nothing is written."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigInvalid([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:  # a spreadsheet's or an old editor's Latin-1 / Windows-1252
        raise ConfigInvalid([f"{path}: not UTF-8 text (save the file as UTF-8)"]) from None
    config = parse_config(load_document(text, filename=str(path)))
    return config_import(config=config, dry_run=dry_run)


class Command(BaseCommand):
    help = "Create or update reps, hours, pools, members, meeting types and routing rules from YAML or JSON."

    def add_arguments(self, parser):
        parser.add_argument("file", help="YAML or JSON file (format: docs/config.md)")
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing")

    def handle(self, *args, file: str, dry_run: bool, **options):
        try:
            changes = import_file(file, dry_run=dry_run)
        except ConfigInvalid as exc:
            for line in exc.errors:
                self.stderr.write(line)
            raise CommandError(f"{file}: {len(exc.errors)} problem(s); nothing was written") from None
        for line in changes:
            self.stdout.write(line)
        if not changes:
            self.stdout.write("No changes: the database already matches the file.")
        elif dry_run:
            self.stdout.write(self.style.WARNING(f"Dry run: {len(changes)} change(s) not written."))
        else:
            self.stdout.write(self.style.SUCCESS(f"{len(changes)} change(s) written."))
