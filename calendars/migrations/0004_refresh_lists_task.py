"""Create the daily "refresh calendar lists" PeriodicTask (django_celery_beat; editable in the admin)."""

from django.db import migrations

from config.beat import periodic_task

NAME = "Calendars: refresh calendar lists"


def create(apps, schema_editor):
    periodic_task(apps, name=NAME, task="calendars.refresh_lists", every=1, period="days")


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("calendars", "0003_periodic_tasks")]

    operations = [migrations.RunPython(create, remove)]
