"""PostgreSQL only: an exclusion constraint makes two overlapping active host rows of one rep impossible.

``EXCLUDE USING gist (rep_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&) WHERE (active)``
needs btree_gist (for ``rep_id WITH =``). On SQLite this migration does nothing: there the IMMEDIATE
transactions serialise writers and the application check inside the transaction decides.
"""

from django.db import migrations

CONSTRAINT = "bookinghost_no_overlap"
TABLE = "booking_bookinghost"


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(rep_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&) WHERE (active)"
    )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("booking", "0003_outbox_idempotency_host_fields")]

    operations = [migrations.RunPython(add, remove, elidable=False)]
