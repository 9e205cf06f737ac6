"""Before 0004 a deleted booking's ledger entries stayed with a NULL booking, where an ``assigned`` entry
reads as an assignment without a booking (an instant route, a lead routed by hand) and charged its former
host for a booking that no longer exists, for good in a ``never`` pool. 0004 only changed what happens from
then on: this removes the orphans left before, as 0004 removes a deleted booking's entries now. Only the
reasons a booking's entries are written with are taken ("<strategy> assignment", "no-show corrected to
completed"); real assignments without a booking ("instant route: lead N", "… routed by hand") stay."""

from django.db import migrations
from django.db.models import Q


def remove_orphans(apps, schema_editor):
    LedgerEntry = apps.get_model("routing", "LedgerEntry")
    of_a_booking = Q(reason__regex=r"^[a-z_]+ assignment$") | Q(reason="no-show corrected to completed")
    LedgerEntry.objects.filter(of_a_booking, kind="assigned", booking__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("routing", "0005_rep_email_unique_any_case")]

    operations = [migrations.RunPython(remove_orphans, migrations.RunPython.noop)]
