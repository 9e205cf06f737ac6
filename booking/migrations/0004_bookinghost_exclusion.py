"""PostgreSQL only: an exclusion constraint makes two overlapping active host rows of one rep impossible.

``EXCLUDE USING gist (rep_id WITH =, tstzrange(blocked_start, blocked_end, '[)') WITH &&) WHERE (active)``
needs btree_gist (for ``rep_id WITH =``). On SQLite this migration does nothing: there the IMMEDIATE
transactions serialise writers and the application check inside the transaction decides.
"""

from django.db import migrations

CONSTRAINT = "bookinghost_no_overlap"
TABLE = "booking_bookinghost"


OVERLAPS = f"""
SELECT a.rep_id, a.booking_id, b.booking_id, a.blocked_start, a.blocked_end, b.blocked_start, b.blocked_end
FROM {TABLE} a JOIN {TABLE} b ON a.rep_id = b.rep_id AND a.id < b.id AND a.active AND b.active
AND a.blocked_start < b.blocked_end AND b.blocked_start < a.blocked_end
ORDER BY a.rep_id, a.booking_id LIMIT 20
"""


def refuse_overlaps(schema_editor):
    """Name the bookings that already overlap, instead of the constraint's bare IntegrityError."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(OVERLAPS)
        rows = cursor.fetchall()
    if rows:
        pairs = "; ".join(
            f"rep {rep}: booking {one} ({s1:%Y-%m-%d %H:%M}–{e1:%H:%M} UTC) and booking {two} "
            f"({s2:%Y-%m-%d %H:%M}–{e2:%H:%M} UTC)"
            for rep, one, two, s1, e1, s2, e2 in rows
        )
        raise RuntimeError(
            "These active bookings of one rep overlap (buffers included), which Baton now refuses; cancel, "
            "move or reassign one of each pair in the admin, then migrate again: " + pairs
        )


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    refuse_overlaps(schema_editor)
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
