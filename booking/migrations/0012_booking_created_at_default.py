# Booking.created_at: set when the instance is made (default=timezone.now) instead of at its insert
# (auto_now_add), so that the invitations' UID can name it before the booking's row goes in. The column is
# unchanged (Django keeps neither in the database): state only, so SQLite does not rebuild the table.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0011_exclusion_range_first"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="booking",
                    name="created_at",
                    field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False),
                ),
            ],
        ),
    ]
