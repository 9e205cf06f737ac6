"""Create the daily "refresh calendar lists" PeriodicTask (django_celery_beat; editable in the admin)."""

from django.db import migrations

from config.beat import interval_schedule

NAME = "Calendars: refresh calendar lists"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule = interval_schedule(IntervalSchedule, 1, "days")
    defaults = {"task": "calendars.refresh_lists", "interval": schedule, "enabled": True}
    PeriodicTask.objects.get_or_create(name=NAME, defaults=defaults)


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("calendars", "0003_periodic_tasks")]

    operations = [migrations.RunPython(create, remove)]
