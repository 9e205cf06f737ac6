"""``first_available``: offer every start at which any member is free; a booking at ``s`` goes to the first
member in next-up order who is free at ``s``."""

from __future__ import annotations

from routing.core.ledger import next_up_order
from routing.core.strategies.base import Strategy, first_free, register, single_host, union_free


@register
class FirstAvailable(Strategy):
    key = "first_available"
    label = "First available"

    def offered(self, pool, req, lo, hi):
        return union_free(pool.members, req, lo, hi)

    def choose(self, pool, req, start):
        chosen, entries = first_free(next_up_order(pool.members), req, start)
        return single_host(chosen), entries
