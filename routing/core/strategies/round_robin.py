"""``round_robin``: offer only the slots of the next-up rep.

The offering rep is the first member in next-up order who has ANY free start within the whole horizon
(``now + notice … now + horizon``), not merely within the requested window; if that rep has no free start in
the window, the result for that window is empty (other members' slots are not offered). A booking at ``s``
goes to the first member in next-up order who is free at ``s`` (so a booking still lands when the ledger moved
between offering and booking).
"""

from __future__ import annotations

from routing.core.availability import free_epochs
from routing.core.ledger import next_up_order
from routing.core.strategies.base import Strategy, first_free, register, single_host


@register
class RoundRobin(Strategy):
    key = "round_robin"
    label = "Round robin"

    def offered(self, pool, req, lo, hi):
        for member in next_up_order(pool.members):
            in_window = free_epochs(member, req, lo, hi)
            if in_window:
                return in_window
            if free_epochs(member, req, req.earliest, req.latest):
                return []
        return []

    def choose(self, pool, req, start):
        chosen, entries = first_free(next_up_order(pool.members), req, start)
        return single_host(chosen), entries
