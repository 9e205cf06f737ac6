"""Which copy of a meeting each host holds (``BookingHost.invitation``, recorded by the hosts' e-mails).
SQLite may rebuild the host rows' table for the new column: its triggers pause
(``booking.triggers.pause_on_sqlite``)."""

from django.db import migrations, models

from booking import triggers


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0017_manage_links"),
    ]

    operations = [
        migrations.RunPython(triggers.pause_on_sqlite, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="bookinghost",
            name="invitation",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "none sent yet"),
                    ("baton", "Baton's e-mail (.ics)"),
                    ("provider", "the event Baton writes into their calendar"),
                ],
                db_default="",
                default="",
                editable=False,
                max_length=8,
            ),
        ),
        migrations.RunPython(migrations.RunPython.noop, triggers.pause_on_sqlite, elidable=False),
    ]
