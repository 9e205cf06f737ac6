"""``ranked``: offer every start at which any member is free; a booking at ``s`` goes to the lowest-rank
member free at ``s`` (equal ranks: next-up order)."""

from __future__ import annotations

from routing.core.ledger import rank_key
from routing.core.strategies.base import Strategy, first_free, register, single_host, union_free


@register
class Ranked(Strategy):
    key = "ranked"
    label = "Ranked"

    def offered(self, pool, req, lo, hi):
        return union_free(pool.members, req, lo, hi)

    def choose(self, pool, req, start):
        chosen, entries = first_free(sorted(pool.members, key=rank_key), req, start)
        return single_host(chosen), entries
