from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0009_host_ledger_copies"),
        ("routing", "0002_ledger_pool_kind_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(
                    models.Q(("booking__isnull", True), ("kind", "assigned")),
                    ("kind__in", ["reassigned_from", "reassigned_to", "joined"]),
                    _connector="OR",
                ),
                fields=["pool", "rep"],
                name="ledger_pool_special",
            ),
        ),
    ]
