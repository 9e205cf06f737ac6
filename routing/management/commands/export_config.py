"""``manage.py export_config [-o FILE]``: the configuration in the import format (YAML, or JSON)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.configfile import config_export, dump_document


class Command(BaseCommand):
    help = "Write reps, working hours, pools, members, meeting types and routing rules (import format)."

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output")
        parser.add_argument(
            "--format", choices=["yaml", "json"], help="Default: json for *.json outputs, else yaml"
        )

    def handle(self, *args, output: str | None, format: str | None, **options):
        fmt = format or ("json" if output and output.lower().endswith(".json") else "yaml")
        text = dump_document(config_export(), fmt=fmt)
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{output}: cannot write: {exc.strerror or exc}") from None
        self.stderr.write(f"Wrote {output}")
