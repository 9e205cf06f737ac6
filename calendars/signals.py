"""Keep BusyInterval rows consistent when calendars disappear (also through admin or cascade deletes):
synced rows carry no foreign key, only the ``"<calendar pk>:"`` external-id prefix."""

from __future__ import annotations

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from calendars.models import BusyInterval, Calendar, CalendarConnection
from calendars.services.history import busy_archive


@receiver(pre_delete, sender=Calendar, dispatch_uid="calendars.drop_busy_rows")
def drop_busy_rows(sender, instance: Calendar, **kwargs) -> None:
    rep_id = (
        CalendarConnection.objects.filter(pk=instance.connection_id).values_list("rep_id", flat=True).first()
    )
    rows = BusyInterval.objects.filter(
        external_id__startswith=instance.busy_prefix,
        source__in=[BusyInterval.Source.CALENDAR, BusyInterval.Source.ICS],
    )
    if rep_id is not None:
        rows = rows.filter(rep_id=rep_id)
    busy_archive(rows)  # they were real busy time until now (calendars.services.history)
    rows.delete()
