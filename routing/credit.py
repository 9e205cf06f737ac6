"""Who holds the fairness credit of a booking's seat, read from the booking's decision history
(``Booking.decision["history"]``). No database access.

One rule in one place: the booking services move or give back the credit of its holder (cancellation,
reschedule, reassignment, no-show: ``booking.services``), and the live fairness ledger counts the holder
(``routing.ledger.override_hosts``), so that both name the same rep. The entries it reads are written by
``booking.services.reassign`` (``reassigned``: one seat ``from`` a rep ``to`` another, ``counts`` for
fairness or not) and ``booking.services.manage`` (``rescheduled``: the hosts it had in ``from.hosts``).
"""

from __future__ import annotations

from collections.abc import Sequence


def credit_holder(history: Sequence, rep_id: int) -> int:
    """The rep holding the fairness credit of the seat ``rep_id`` hosts: ``rep_id`` itself, unless it got
    the seat through a non-counting override — then whoever held the credit before that override.

    The seat was got by the latest entry that gave it to ``rep_id``: a reassignment to it, or a reschedule
    that routed the booking again while ``rep_id`` was not among its hosts (a counting seat; an older
    override to the same rep, from before the booking was routed away and back, says nothing any more)."""
    index = len(history)
    while True:
        entry = None
        for i in range(index - 1, -1, -1):
            e = history[i]
            if not isinstance(e, dict):
                continue
            if e.get("action") == "reassigned" and e.get("to") == rep_id:
                entry = (i, e)
                break
            if e.get("action") == "rescheduled" and rep_id not in ((e.get("from") or {}).get("hosts") or ()):
                return rep_id  # routed to it again
        if entry is None or entry[1].get("counts", True) or not isinstance(entry[1].get("from"), int):
            return rep_id
        index, rep_id = entry[0], entry[1]["from"]
