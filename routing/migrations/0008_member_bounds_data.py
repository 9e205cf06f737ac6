"""Pool members brought into the bounds 0007 added to the fields: ``weight`` 0.01–1000 and ``adjustment``
±1,000,000. 0007 only added validators, so a member weighted 5000 before it (valid then: ``> 0``) kept it:
``export_config`` wrote it and importing that very export was refused, and the member's admin page would not
save until someone found the row. Each stored value beyond a bound becomes that bound; a value that is no
number at all (NaN, which PostgreSQL can hold) becomes the field's default (weight 1, adjustment 0).

Each member changed gets a ``adjusted`` ("Manual adjustment") ledger entry, as an admin's edit of the
adjustment gets (``routing.services.member_adjust``): ``delta`` is the change of the adjustment (0 when
only the weight changed) and the reason names the old and new values. Reverse is a no-op."""

import math

from django.db import migrations

WEIGHT = (0.01, 1000.0, 1.0)  # low, high, instead of NaN
ADJUSTMENT = (-1e6, 1e6, 0.0)


def _clamp(value, bounds):
    low, high, default = bounds
    if math.isnan(value):
        return default
    return min(high, max(low, value))


def clamp_members(apps, schema_editor):
    PoolMember = apps.get_model("routing", "PoolMember")
    LedgerEntry = apps.get_model("routing", "LedgerEntry")
    for member in PoolMember.objects.order_by("pk"):
        weight, adjustment = _clamp(member.weight, WEIGHT), _clamp(member.adjustment, ADJUSTMENT)
        if weight == member.weight and adjustment == member.adjustment:  # NaN != NaN: changed
            continue
        PoolMember.objects.filter(pk=member.pk).update(weight=weight, adjustment=adjustment)
        said = [
            f"{name} {old:g} → {new:g}"
            for name, old, new in (
                ("weight", member.weight, weight),
                ("adjustment", member.adjustment, adjustment),
            )
            if not old == new
        ]
        delta = 0.0 if math.isnan(member.adjustment) else adjustment - member.adjustment
        LedgerEntry.objects.create(
            pool_id=member.pool_id,
            rep_id=member.rep_id,
            kind="adjusted",
            delta=delta,
            reason=f"brought into bounds by migration routing.0008: {', '.join(said)}"[:300],
        )


class Migration(migrations.Migration):
    dependencies = [("routing", "0007_member_bounds")]

    operations = [migrations.RunPython(clamp_members, migrations.RunPython.noop)]
