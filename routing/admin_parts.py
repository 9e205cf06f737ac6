"""An admin mixin for objects whose related rows are parts of them."""

from __future__ import annotations


class DeletedWithIt:
    """``get_deleted_objects`` without the delete permission of the rows deleted along with the object
    (a rep's or pool's ledger entries, hours, memberships; a meeting type's rules): their own admins refuse
    deleting them one by one (the ledger is an audit trail), and a superuser was told "your account doesn't
    have permission to delete … ledger entry" for a rep added to a pool by mistake, with a 403 on the
    POST, or, for one with bookings, that instead of the protected bookings (listed now: cancel or reassign
    them first). The caller checked the permission to delete the object itself."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected
