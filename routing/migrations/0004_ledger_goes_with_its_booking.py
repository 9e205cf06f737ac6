"""A booking's ledger entries are deleted with it (they were kept with a NULL booking, where an "assigned"
entry reads as an assignment without a booking and charged its host again). Django-side only: the foreign
key's constraint has no ON DELETE clause either way."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0011_exclusion_range_first"),
        ("routing", "0003_ledgerentry_ledger_pool_special"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="booking",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="ledger",
                to="booking.booking",
            ),
        ),
    ]
