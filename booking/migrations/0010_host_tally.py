"""Fairness tallies of host rows (``HostTally``), kept by database triggers (``booking.triggers``), so the
fairness ledger reads a few rows per rep for a period instead of counting the period's host rows under the
booking locks. The triggers go in and the tallies are counted from the existing host rows in one step (on
PostgreSQL in the migration's transaction, whose trigger creation holds off writes to host rows meanwhile)."""

from django.db import migrations, models

from booking import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)
    triggers.recount(schema_editor.connection)


def uninstall(apps, schema_editor):
    triggers.uninstall(schema_editor.connection, tally_only=True)


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0009_host_ledger_copies"),
    ]

    operations = [
        migrations.CreateModel(
            name="HostTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("pool_id", models.BigIntegerField()),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("day", "Day"),
                            ("week", "Week (from Monday)"),
                            ("month", "Month"),
                            ("all", "All time"),
                        ],
                        max_length=8,
                    ),
                ),
                ("start", models.DateField(help_text="The bucket's first day (UTC); all time: 1970-01-01")),
                ("rep_id", models.BigIntegerField()),
                ("status", models.CharField(max_length=16)),
                ("n", models.IntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("pool_id", "kind", "start", "rep_id", "status"), name="hosttally_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
