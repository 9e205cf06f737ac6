"""PostgreSQL only: a GiST index on each rep's busy ranges, so that the busy rows overlapping a window are
found near it (``routing.selectors.INTERVALS_SQL``) instead of by reading every later row of the reps. The
check constraint ``busy_end_after_start`` keeps every range valid. On SQLite this migration does nothing."""

from django.db import migrations

INDEX = "busy_rep_range"


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"""CREATE INDEX IF NOT EXISTS {INDEX} ON calendars_busyinterval """
        """USING gist (rep_id, tstzrange(start, "end", '[)'))"""
    )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("calendars", "0005_busy_history")]

    operations = [migrations.RunPython(add, remove, elidable=False)]
