"""Rows stored before 0012, 0013 and 0014, brought to what those migrations mean.

* Creates never answered (0013, ``BookingEvent.State.CREATING``). Before 0013 the write-back recorded a
  host's event as ``cancelled`` (nothing written) and then sent the create; one whose answer never came (a
  timeout: the provider may have made the event all the same, and invited the prospect) left that record:
  ``cancelled``, no event id, never written (``written_sequence`` -1), with a calendar. Seen as cancelled,
  a later change that no longer wants the event (a cancellation, a reassignment) asked the provider for
  nothing, and the event stayed in the host's and the prospect's calendars for good. Such records become
  ``creating``: the write-back removes the event by its key (``_cancel``: ``cancel_unconfirmed``, by the key
  of the record's ``generation``, the one the create was sent with), or its retry finds it by that key; a key
  that made nothing is removed harmlessly (Google answers 404, Graph finds no event).
* ``sent_start``/``sent_end`` (0014) of ``creating`` records that have none: the booking's times, the ones
  a create sends (``writeback._draft``). ``_cancel`` read the booking's for a record without them, but a
  retry of the create (``_create_begun``) kept only its own times: once the booking moved, a provider that
  finds an unconfirmed event by its time (Graph) no longer looked at the time the first create was for.
* Years 2000–2999 (0012, ``routing.validators.validate_years``). 0012 only added validators, so time off
  typed before it as "until 9999-12-31" (the usual "indefinitely"), or a date override of 1999, stayed:
  ``export_config`` wrote it, importing that very export was refused, and the rep's admin page would not
  save. Time off is clamped to the range in UTC, as the validators test it (from 2000-01-01 00:00 to
  2999-12-31 23:59:59.999999): time off wholly outside it is deleted (no bookable time is in it), as are
  date overrides dated outside it.

Set-based statements (no row is read into Python). Reverse is a no-op: nothing here can be undone."""

import datetime as dt

from django.db import migrations
from django.db.models import OuterRef, Subquery

FIRST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LAST = dt.datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def unanswered_creates(apps, schema_editor):
    BookingEvent = apps.get_model("calendars", "BookingEvent")
    Booking = apps.get_model("booking", "Booking")
    BookingEvent.objects.filter(
        state="cancelled", external_event_id="", written_sequence=-1, calendar__isnull=False
    ).update(state="creating")
    booking = Booking.objects.filter(pk=OuterRef("booking_id"))
    creating = BookingEvent.objects.filter(state="creating")
    creating.filter(sent_start__isnull=True).update(sent_start=Subquery(booking.values("start")[:1]))
    creating.filter(sent_end__isnull=True).update(sent_end=Subquery(booking.values("end")[:1]))


def within_years(apps, schema_editor):
    TimeOff = apps.get_model("calendars", "TimeOff")
    DateOverride = apps.get_model("calendars", "DateOverride")
    TimeOff.objects.filter(end__lte=FIRST).delete()
    TimeOff.objects.filter(start__gte=LAST).delete()
    TimeOff.objects.filter(start__lt=FIRST).update(start=FIRST)
    TimeOff.objects.filter(end__gt=LAST).update(end=LAST)
    DateOverride.objects.filter(date__lt=FIRST.date()).delete()
    DateOverride.objects.filter(date__gt=LAST.date()).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calendars", "0014_booking_event_sent_time"),
    ]

    operations = [
        migrations.RunPython(unanswered_creates, migrations.RunPython.noop),
        migrations.RunPython(within_years, migrations.RunPython.noop),
    ]
