"""``group``: one host per role, all of them at the same time.

Roles are the distinct ``MemberState.role`` values of all members (inactive ones included, so deactivating
the only member of a role stops the pool rather than silently dropping the role); a pool with no members
offers nothing. Within a role, members are ordered by next-up order, or by rank (ties: next-up order) when
``PoolSpec.group_order == "rank"``.

* ``s`` is offered iff every role has at least one member free at ``s`` (intersection over roles of the
  union of the role's members' free starts).
* A booking at ``s`` takes, per role (roles in alphabetical order), the first free member in that role's
  order; all of them become hosts. If any role has nobody free, nobody is booked.
* Fairness is per role: each member's own count/weight decides its place within its role.
"""

from __future__ import annotations

from routing.core.ledger import next_up_order, rank_key
from routing.core.reasons import ROLE_FILLED
from routing.core.results import Host
from routing.core.strategies.base import Strategy, first_free, register, union_free


def roles_of(pool):
    """``{role: members in that role's order}``, roles sorted by name."""
    roles: dict[str, list] = {}
    for member in pool.members:
        roles.setdefault(member.role, []).append(member)
    if pool.group_order == "rank":
        return {role: sorted(roles[role], key=rank_key) for role in sorted(roles)}
    return {role: next_up_order(roles[role]) for role in sorted(roles)}


@register
class Group(Strategy):
    key = "group"
    label = "Group (one host per role)"

    def offered(self, pool, req, lo, hi):
        common: set[int] | None = None
        for members in roles_of(pool).values():
            free = union_free(members, req, lo, hi)
            common = free if common is None else common & free
            if not common:
                return set()
        return common or set()

    def choose(self, pool, req, start):
        hosts: list[Host] = []
        entries: list = []
        complete = bool(pool.members)
        for role, members in roles_of(pool).items():
            chosen, role_entries = first_free(members, req, start, rest_reason=ROLE_FILLED)
            entries.extend(role_entries)
            if chosen is None:
                complete = False
            else:
                hosts.append(Host(chosen.rep_id, role))
        return (hosts if complete else []), entries
