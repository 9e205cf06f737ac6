"""``CalendarConnection.account_key``: the provider's lasting id of the account (Microsoft's
``home_account_id``), by which a connect finds the account's connection (``connection_create``).

Existing Microsoft connections take it from their stored credentials (the MSAL cache's
``home_account_id``, kept beside it in the encrypted secrets since Microsoft was added), decrypted with
``TOKEN_ENCRYPTION_KEYS`` as ``calendars.crypto`` does (written out here: a migration must not change with
the app's code). A row that cannot be read (no keys configured, a key retired too early, no
``home_account_id``) keeps an empty key and is matched by its address, as before. Reverse drops the column.
"""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import migrations, models


def fill_microsoft_keys(apps, schema_editor):
    try:
        fernet = MultiFernet([Fernet(key) for key in getattr(settings, "TOKEN_ENCRYPTION_KEYS", None) or []])
    except ValueError:  # no key (MultiFernet of nothing), or one that is no Fernet key: nothing to read
        return
    CalendarConnection = apps.get_model("calendars", "CalendarConnection")
    rows = CalendarConnection.objects.filter(provider="microsoft", account_key="").exclude(secret_blob="")
    for pk, blob in list(rows.values_list("pk", "secret_blob")):
        try:
            home = json.loads(fernet.decrypt(blob.encode())).get("home_account_id")
        except (InvalidToken, ValueError, AttributeError):  # unreadable, or not the JSON object stored
            continue
        if isinstance(home, str) and 0 < len(home) <= 255:
            CalendarConnection.objects.filter(pk=pk).update(account_key=home)


class Migration(migrations.Migration):
    dependencies = [
        ("calendars", "0016_calendar_retry_not_before"),
    ]

    operations = [
        migrations.AddField(
            model_name="calendarconnection",
            name="account_key",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="The provider's lasting id of the account (Microsoft: home_account_id); empty: "
                "known by its address",
                max_length=255,
            ),
        ),
        migrations.RunPython(fill_microsoft_keys, migrations.RunPython.noop),
    ]
