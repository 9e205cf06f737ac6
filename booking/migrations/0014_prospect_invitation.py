"""Which invitation of a meeting the prospect holds (``Booking.prospect_invitation``, recorded by the
prospect's e-mails). SQLite rebuilds the bookings' table for the new column: its triggers pause
(``booking.triggers.pause_on_sqlite``)."""

from django.db import migrations, models

from booking import triggers


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0013_purge_outbox_task"),
    ]

    operations = [
        migrations.RunPython(triggers.pause_on_sqlite, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="booking",
            name="prospect_invitation",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "none sent yet"),
                    ("baton", "Baton's e-mail (.ics)"),
                    ("provider", "the lead host's calendar"),
                ],
                db_default="",
                default="",
                editable=False,
                max_length=8,
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, triggers.pause_on_sqlite, elidable=False),
    ]
