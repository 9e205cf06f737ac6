"""Meeting types' ``minimum_notice_minutes`` brought into the bound 0015 added (at most a year,
365 × 24 × 60 = 525,600 minutes). 0015 only added a validator, so a larger notice stored before it stayed:
``export_config`` wrote it, importing that very export was refused, and the admin page would not save. Such
a value becomes 525,600 (no slot is bookable either way). Only ``booking_meetingtype`` is updated (the
booking and host tables and their triggers are untouched). Reverse is a no-op."""

from django.db import migrations

YEAR = 365 * 24 * 60


def clamp_notice(apps, schema_editor):
    MeetingType = apps.get_model("booking", "MeetingType")
    MeetingType.objects.filter(minimum_notice_minutes__gt=YEAR).update(minimum_notice_minutes=YEAR)


class Migration(migrations.Migration):
    dependencies = [("booking", "0015_meeting_type_bounds")]

    operations = [migrations.RunPython(clamp_notice, migrations.RunPython.noop)]
