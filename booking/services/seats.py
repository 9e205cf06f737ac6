"""The seats a rescheduled ``group`` booking keeps when it came through a route: routed again among the
route's candidates, but its hosts still free keep their seats whoever seated them (live in
``booking.services.manage``, replayed in ``insights.sim_steps``)."""

from __future__ import annotations

from dataclasses import replace

from booking.services.routing import seats_kept
from routing.core.types import PoolSpec


def seats_kept_routed(routed: PoolSpec, full: PoolSpec, seated: dict[str, int]) -> PoolSpec:
    """``seats_kept(routed, seated)`` with the hosts in ``seated`` (role → rep id) available as they are in
    ``full`` (the pool's spec before the route restricted it to ``routed``): a kept host need not be a
    candidate of the route (an admin may have seated the account's owner), as ``reschedule_slots`` offers
    the times they are free. The route's ranks and factors stay as it set them."""
    kept = set(seated.values())
    active = {m.rep_id: m.active for m in full.members if m.rep_id in kept}
    members = tuple(replace(m, active=active[m.rep_id]) if m.rep_id in active else m for m in routed.members)
    return seats_kept(replace(routed, members=members), seated)
