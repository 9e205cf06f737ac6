"""Create the calendar PeriodicTasks (django_celery_beat) so their schedules are editable in the admin.

Cadence at migrate time: sync sweep every 2 minutes (each calendar is re-synced once its last attempt is
older than CALENDAR_POLL_MINUTES), ICS sweep every 5 minutes (CALENDAR_ICS_POLL_MINUTES per feed), push
channel renewal every 30 minutes.
"""

from django.db import migrations

from config.beat import periodic_task

TASKS = [
    ("Calendars: sync stale calendars", "calendars.sync_due", 2),
    ("Calendars: poll ICS feeds", "calendars.poll_ics", 5),
    ("Calendars: renew push channels", "calendars.renew_watches", 30),
]


def create(apps, schema_editor):
    for name, task, minutes in TASKS:
        periodic_task(apps, name=name, task=task, every=minutes, period="minutes")


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calendars", "0002_connections"),
        ("django_celery_beat", "0018_improve_crontab_helptext"),
    ]

    operations = [migrations.RunPython(create, remove)]
