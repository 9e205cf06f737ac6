"""PostgreSQL only: the GiST index on busy ranges leads with the range (``busy_range_rep``, replacing
``busy_rep_range``, which led with the rep). Phase one asks for the busy rows of all a pool's reps
(``rep_id = ANY(…)``, which GiST cannot use) overlapping a window: in an index split by rep first, every
subtree's ranges span the whole synced horizon, so the scan read most of the index (67 pages for 8 rows of
a 50-rep pool with 1,600 busy rows: 0.32 of the statement's 0.38 ms); split by range first it reads the
pages near the window (10 pages, statement 0.09 ms). A rep's own rows near a window still come from it (the
range first, then the rep). On SQLite this migration does nothing."""

from django.db import migrations

OLD, NEW = "busy_rep_range", "busy_range_rep"
TABLE = "calendars_busyinterval"
RANGE = """tstzrange(start, "end", '[)')"""


def _swap(schema_editor, make: str, columns: str, drop: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {make} ON {TABLE} USING gist ({columns})")
    schema_editor.execute(f"DROP INDEX IF EXISTS {drop}")


def forward(apps, schema_editor):
    _swap(schema_editor, NEW, f"{RANGE}, rep_id", OLD)


def backward(apps, schema_editor):
    _swap(schema_editor, OLD, f"rep_id, {RANGE}", NEW)


class Migration(migrations.Migration):
    dependencies = [("calendars", "0006_busy_range_index")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
