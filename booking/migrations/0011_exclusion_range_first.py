"""PostgreSQL only: the exclusion constraint ``bookinghost_no_overlap`` keeps its meaning (no two active host
rows of one rep overlap) with its GiST index led by the range: ``EXCLUDE USING gist (tstzrange(blocked_start,
blocked_end, '[)') WITH &&, rep_id WITH =) WHERE (active)``. Under the booking locks the pool's host rows
near the booking are read for all its reps at once (``rep_id = ANY(…)``, which GiST cannot use): in the index
led by the rep every subtree's ranges span the whole future, so that read took most of the index (50 reps
with 5,000 future host rows: 44–46 pages, 0.32 ms; 60,000: 43 pages, 0.24–0.38 ms); led by the range it
reads the pages near the booking (4–6 pages, 0.06–0.09 ms). The constraint's own check (one rep, one range)
finds its rows either way. Dropped and added in one transaction: no moment without the constraint."""

from django.db import migrations

CONSTRAINT = "bookinghost_no_overlap"
TABLE = "booking_bookinghost"
RANGE = "tstzrange(blocked_start, blocked_end, '[)') WITH &&"


def _replace(schema_editor, columns: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
    schema_editor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist ({columns}) WHERE (active)"
    )


def forward(apps, schema_editor):
    _replace(schema_editor, f"{RANGE}, rep_id WITH =")


def backward(apps, schema_editor):
    _replace(schema_editor, f"rep_id WITH =, {RANGE}")


class Migration(migrations.Migration):
    dependencies = [("booking", "0010_host_tally")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
