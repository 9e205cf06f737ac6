"""Host rows carry copies of their booking's pool and status, kept by database triggers
(``booking.triggers``), so the fairness ledger counts a pool's host rows from one index (``host_ledger``)
instead of looking up each row's booking. ``host_ledger`` replaces ``host_rep_assigned``."""

from django.db import migrations, models

from booking import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)
    schema_editor.execute(triggers.BACKFILL)


def uninstall(apps, schema_editor):
    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0008_host_rep_assigned_index"),
        ("routing", "0002_ledger_pool_kind_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="bookinghost", name="host_rep_assigned"),
        migrations.AddField(
            model_name="bookinghost",
            name="booking_pool_id",
            field=models.BigIntegerField(
                editable=False, help_text="The booking's pool (copied by a database trigger)", null=True
            ),
        ),
        migrations.AddField(
            model_name="bookinghost",
            name="booking_status",
            field=models.CharField(
                editable=False,
                help_text="The booking's status (copied by a database trigger)",
                max_length=16,
                null=True,
            ),
        ),
        migrations.RunPython(install, uninstall, elidable=False),
        migrations.AddIndex(
            model_name="bookinghost",
            index=models.Index(
                fields=["booking_pool_id", "rep", "assigned_at", "released", "booking_status"],
                name="host_ledger",
            ),
        ),
    ]
