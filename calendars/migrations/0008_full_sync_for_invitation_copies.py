"""Google and Microsoft syncs now leave out a host's calendar copy of Baton's e-mailed invitation. Rows
synced before from such copies would stay until their event changes or the weekly full sync; clearing
``window_end`` makes each Google and Microsoft calendar's next sync a full one, which replaces them."""

from django.db import migrations


def full_sync_next(apps, schema_editor):
    Calendar = apps.get_model("calendars", "Calendar")
    Calendar.objects.filter(connection__provider__in=("google", "microsoft")).update(window_end=None)


class Migration(migrations.Migration):
    dependencies = [("calendars", "0007_busy_range_first_index")]

    operations = [migrations.RunPython(full_sync_next, migrations.RunPython.noop)]
