"""Create the booking PeriodicTasks (django_celery_beat; schedules editable in the admin): the outbox sweep
every minute (re-sends undelivered messages) and the idempotency-key purge every hour."""

from django.db import migrations

from config.beat import periodic_task

TASKS = [
    ("Booking: deliver pending outbox messages", "booking.outbox_sweep", 1),
    ("Booking: purge expired idempotency keys", "booking.purge_idempotency_keys", 60),
]


def create(apps, schema_editor):
    for name, task, minutes in TASKS:
        periodic_task(apps, name=name, task=task, every=minutes, period="minutes")


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0004_bookinghost_exclusion"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create, remove)]
