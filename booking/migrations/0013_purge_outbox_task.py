"""Create the daily "purge old outbox messages" PeriodicTask (django_celery_beat; editable in the admin)."""

from django.db import migrations

from config.beat import periodic_task

NAME = "Booking: purge old outbox messages"


def create(apps, schema_editor):
    periodic_task(apps, name=NAME, task="booking.purge_outbox", every=1, period="days")


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0012_booking_created_at_default"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create, remove)]
