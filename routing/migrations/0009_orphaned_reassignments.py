"""0006 removed the ``assigned`` entries that bookings deleted before 0004 left with a NULL booking, but not
the same bookings' reassignment entries (``booking_reassign``: ``reassigned_from`` -1 for the host it left,
``reassigned_to`` +1 for the new one). The ledger reads a ``reassigned_from`` without a booking as a lead's
charge taken back from its rep (``routing.ledger.TAKEN_BACK``): the host a deleted booking was reassigned
away from had a booking taken off for good (every period in a ``never`` pool), and round robin handed them
bookings ahead of their turn.

This removes the reassignment entries without a booking, as 0004 removes a deleted booking's entries now,
except the only ones written without a booking: a lead's charge taken back by a routing by hand
(``routing.services.ledger_taken_back``, from ``leads.manual.lead_route_by_hand``), whose reason always
starts "lead #<id> routed by hand to " (a booking's reassignment says its override code: "rep_unavailable:
…"). A ``reassigned_to`` is never written without a booking. One DELETE. Reverse is a no-op."""

from django.db import migrations
from django.db.models import Q

TAKEN_BACK = r"^lead #[0-9]+ routed by hand to "


def remove_orphans(apps, schema_editor):
    LedgerEntry = apps.get_model("routing", "LedgerEntry")
    orphans = LedgerEntry.objects.filter(
        kind__in=["reassigned_from", "reassigned_to"], booking__isnull=True
    ).exclude(Q(kind="reassigned_from") & Q(reason__regex=TAKEN_BACK))
    orphans.delete()


class Migration(migrations.Migration):
    dependencies = [("routing", "0008_member_bounds_data")]

    operations = [migrations.RunPython(remove_orphans, migrations.RunPython.noop)]
