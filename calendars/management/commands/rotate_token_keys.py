"""Re-encrypt every stored calendar credential with the first key of TOKEN_ENCRYPTION_KEYS.

Rotation: put the new key first in TOKEN_ENCRYPTION_KEYS (keep the old ones after it), deploy, run this
command, then drop the old keys.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from calendars.crypto import require_keys, rotate_blob
from calendars.errors import CalendarError, TokenKeyMissing
from calendars.models import CalendarConnection


class Command(BaseCommand):
    help = "Re-encrypt calendar credentials with the first TOKEN_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        try:
            require_keys()  # said once, not as every row failing to decrypt
        except TokenKeyMissing as exc:
            raise CommandError(exc.message) from None
        rotated, failed = 0, []
        for pk in CalendarConnection.objects.values_list("pk", flat=True).order_by("pk"):
            with transaction.atomic():
                rows = CalendarConnection.objects.select_for_update().only("pk", "secret_blob")
                connection = rows.filter(pk=pk).first()
                if connection is None:  # deleted since the ids were listed (a rep's Disconnect): go on
                    continue
                try:
                    blob = rotate_blob(connection.secret_blob)
                except CalendarError as exc:
                    failed.append((pk, exc.code))
                    continue
                CalendarConnection.objects.filter(pk=pk).update(secret_blob=blob)
                rotated += 1
        self.stdout.write(f"re-encrypted {rotated} calendar connection(s)")
        if failed:
            raise CommandError(
                f"{len(failed)} connection(s) could not be decrypted with any key: "
                + ", ".join(f"#{pk} ({code})" for pk, code in failed)
            )
