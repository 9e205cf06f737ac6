"""Rules' ``disqualify_message`` brought into the bound 0003 added (at most 2,000 characters). 0003 only
added a validator, so a longer message saved before it (a TextField took any length; the admin's textarea
had no limit) stayed: ``export_config`` wrote it, importing that very export was refused, and the rule's
admin page would not save. Such a message is cut to its first 2,000 characters (code points, as the
validator counts them: PostgreSQL's and SQLite's ``substr`` and ``length`` count the same). One UPDATE.
Reverse is a no-op: the cut text is gone."""

from django.db import migrations
from django.db.models.functions import Length, Substr

LIMIT = 2000


def cut_messages(apps, schema_editor):
    RoutingRule = apps.get_model("leads", "RoutingRule")
    RoutingRule.objects.annotate(length=Length("disqualify_message")).filter(length__gt=LIMIT).update(
        disqualify_message=Substr("disqualify_message", 1, LIMIT)
    )


class Migration(migrations.Migration):
    dependencies = [("leads", "0004_account_domains_ascii")]

    operations = [migrations.RunPython(cut_messages, migrations.RunPython.noop)]
