"""An admin mixin for objects whose related rows are parts of them."""

from __future__ import annotations

from django.apps import apps
from django.contrib.admin.utils import NestedObjects
from django.db import router

# Rows whose own admin refuses deleting them one by one by design (an audit trail, a booking's parts): the
# permission to delete them is one nobody holds, so it is not asked when they go with their owner.
PARTS = (("routing", "LedgerEntry"), ("booking", "BookingHost"), ("calendars", "BookingEvent"))


class DeletedWithIt:
    """``get_deleted_objects`` without the delete permission of ``PARTS`` (a rep's or pool's ledger
    entries) and of the protected rows (Django asks it of them too, and shows that instead of them): a
    superuser was told "your account doesn't have permission to delete … ledger entry" for a rep added to a
    pool by mistake (a 403 on the POST), or that instead of the protected bookings (listed now: cancel or
    reassign them first). Any other missing permission still refuses the deletion (leads of a meeting
    type, a rep's calendar connections)."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        exempt = {str(apps.get_model(app, model)._meta.verbose_name) for app, model in PARTS}
        if protected:
            collector = NestedObjects(using=router.db_for_write(self.model))
            collector.collect(objs)
            exempt |= {str(obj._meta.verbose_name) for obj in collector.protected}
        return deleted, counts, {p for p in perms_needed if str(p) not in exempt}, protected
