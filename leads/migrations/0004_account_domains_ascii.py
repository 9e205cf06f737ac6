"""Account domains in their normalised form (IDNA ASCII: ``bücher.de`` → ``xn--bcher-kva.de``), as
``Account.save``, the CSV import and the owner lookup store and compare them since domains are normalised.
Before, ``Account.save`` only lower-cased, so a CRM's account saved or imported as ``bücher.de`` stayed in
Unicode: ``learn_account_owners`` then took ``xn--bcher-kva.de`` for an unowned domain and created a
second, learned account (which the owner lookup prefers), and re-importing the same CSV created a duplicate.

Each row's domain is normalised. Rows that become the same domain are merged into one, and the row kept is
the one an admin or the CRM import set (``learned`` false) over one learned from the booking history; among
those alike, the one with an owner, then the most recently updated, then the one already in ASCII. The kept
row keeps its own fields; a blank name or CRM id is filled from a merged row, and a kept row without an
owner takes a merged row's owner (with that row's ``learned``). The other rows are deleted (nothing refers
to an account). A domain whose ASCII form would exceed the column (253 characters) is left as it is: the
code paths still find an account stored in Unicode. Not reversible in the data (reverse is a no-op)."""

import unicodedata

import idna
from django.db import migrations


def normalize_domain(domain):
    """``leads.rules_core.normalize_domain`` as of this migration (kept here so it does not change later)."""
    domain = unicodedata.normalize("NFKC", domain.strip()).lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain


def _preference(account, normal):
    return (
        account.learned,  # an admin's / the CRM's row first
        account.owner_id is None,
        -account.updated_at.timestamp(),
        account.domain != normal,
        account.pk,
    )


def accounts_ascii(apps, schema_editor):
    Account = apps.get_model("leads", "Account")
    groups = {}
    for account in Account.objects.order_by("pk"):
        groups.setdefault(normalize_domain(account.domain), []).append(account)
    for normal, accounts in groups.items():
        if len(normal) > 253 or not normal:
            continue
        if len(accounts) == 1 and accounts[0].domain == normal:
            continue
        kept, *merged = sorted(accounts, key=lambda a: _preference(a, normal))
        changes = {"domain": normal}
        for other in merged:
            for field in ("name", "crm_id"):
                if not changes.get(field, getattr(kept, field)) and getattr(other, field):
                    changes[field] = getattr(other, field)
            if changes.get("owner_id", kept.owner_id) is None and other.owner_id is not None:
                changes.update(owner_id=other.owner_id, learned=other.learned)
        Account.objects.filter(pk__in=[a.pk for a in merged]).delete()
        Account.objects.filter(pk=kept.pk).update(**changes)


class Migration(migrations.Migration):
    dependencies = [("leads", "0003_disqualify_message_length")]

    operations = [migrations.RunPython(accounts_ascii, migrations.RunPython.noop)]
