"""Which invitation the prospects and hosts of bookings made before 0014 and 0018 hold.

0014 (``Booking.prospect_invitation``) and 0018 (``BookingHost.invitation``) added the record with "" ("none
sent yet") on every existing row, though the e-mails had sent those people an invitation: Baton's .ics, or
none where the calendar Baton writes into has the event (the lead's invites the prospect). The e-mails read
"" with a calendar that receives bookings as "the provider's event": a rep who connects a calendar after the
upgrade, on a booking whose e-mails had carried Baton's .ics, got no CANCEL of it when the booking was
cancelled (nor did the prospect), and the cancelled meeting stayed in their calendars for good.

This records what the e-mails of the time recorded now (``booking.emails``: ``send_host_email``,
``send_prospect_email``), for the rows still "" of the bookings whose e-mails can still be sent: confirmed
and not started (``booking_changeable``: a booking that has started is neither cancelled, moved nor
reassigned any more, and one cancelled told its people already), their active host rows (a host released
by a reassignment got a CANCEL: "" is what they hold). The records of other bookings are never read again
and stay "" (writing them would rewrite every past booking and host row of the installation for nothing).

* ``provider`` where the write-back has (or may have: ``creating``, see calendars 0015, which runs first)
  the event in the rep's calendar: the host's own event; for the prospect, the lead host's event (the first
  active host in ``HOST_ORDER``), which invited them. The e-mail sent no .ics then.
* ``baton`` otherwise, where the e-mail was delivered: a delivered ``email.host`` message to that rep
  (``payload.host.rep_id``) or ``email.prospect`` message of the booking, or none left undelivered (the
  delivered ones are purged after ``BOOKING_OUTBOX_RETENTION_DAYS``; every booking is made with its e-mails).
  One whose only e-mails wait in the outbox (or died) stays "": that e-mail records it when it is sent.

Set-based UPDATEs: the booking and host tables' triggers change nothing (neither status, pool, rep nor
``assigned_at`` changes). Reverse is a no-op: what the e-mails sent cannot be unsent."""

from django.db import migrations
from django.db.models import BigIntegerField, Exists, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Collate
from django.utils import timezone

WRITTEN = ("active", "creating")  # an event in the rep's calendar, or maybe (a create never answered)
DELIVERED = "delivered"


def _sent(messages):
    """(delivered, waiting): whether any of ``messages`` was delivered; whether any was not (yet)."""
    return Exists(messages.filter(status=DELIVERED)), Exists(messages.exclude(status=DELIVERED))


def hosts_held(apps, schema_editor):
    BookingHost = apps.get_model("booking", "BookingHost")
    BookingEvent = apps.get_model("calendars", "BookingEvent")
    OutboxMessage = apps.get_model("booking", "OutboxMessage")
    unrecorded = BookingHost.objects.filter(
        invitation="", active=True, booking__status="confirmed", booking__start__gt=timezone.now()
    )
    written = Exists(
        BookingEvent.objects.filter(
            booking_id=OuterRef("booking_id"), rep_id=OuterRef("rep_id"), state__in=WRITTEN
        )
    )
    unrecorded.filter(written).update(invitation="provider")
    to_host = (
        OutboxMessage.objects.filter(booking_id=OuterRef("booking_id"), handler="email.host")
        .annotate(host_rep_id=Cast(KT("payload__host__rep_id"), BigIntegerField()))
        .filter(host_rep_id=OuterRef("rep_id"))
    )
    delivered, waiting = _sent(to_host)
    unrecorded.filter(Q(delivered) | ~Q(waiting)).update(invitation="baton")


def prospects_held(apps, schema_editor):
    Booking = apps.get_model("booking", "Booking")
    BookingHost = apps.get_model("booking", "BookingHost")
    BookingEvent = apps.get_model("calendars", "BookingEvent")
    # the hosts' order as ``booking.models.HOST_ORDER``: roles by code point, then key
    collation = "BINARY" if schema_editor.connection.vendor == "sqlite" else "C"
    lead = (
        BookingHost.objects.filter(booking_id=OuterRef("booking_id"), active=True)
        .order_by(Collate("role", collation), "pk")
        .values("rep_id")[:1]
    )
    invited = Exists(
        BookingEvent.objects.filter(booking_id=OuterRef("pk"), state__in=WRITTEN, rep_id=Subquery(lead))
    )
    unrecorded = Booking.objects.filter(prospect_invitation="", status="confirmed", start__gt=timezone.now())
    unrecorded.filter(invited).update(prospect_invitation="provider")
    OutboxMessage = apps.get_model("booking", "OutboxMessage")
    delivered, waiting = _sent(
        OutboxMessage.objects.filter(booking_id=OuterRef("pk"), handler="email.prospect")
    )
    unrecorded.filter(Q(delivered) | ~Q(waiting)).update(prospect_invitation="baton")


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0019_prospect_address_indexes"),
        ("calendars", "0015_unanswered_creates_and_years_data"),
    ]

    operations = [
        migrations.RunPython(hosts_held, migrations.RunPython.noop),
        migrations.RunPython(prospects_held, migrations.RunPython.noop),
    ]
