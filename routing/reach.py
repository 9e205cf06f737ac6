"""Why a pool can never offer a meeting type a time, in words for whoever can fix it.

A pool offers nothing, ever (the routing core's rules, ``routing/core/README.md``), when:

* it has no member, or (any strategy but ``group``) no member who is active with an active rep;
* ``group``: a role has no such member (every meeting needs one host of every role, and the roles are those
  of all the members, inactive ones too);
* ``group``: the roles' members' time zones never share a start on the meeting type's slot grid, which
  follows each rep's own wall clock (``routing.core.grids``: a Berlin AE and a Kolkata SE on a 60-minute
  grid).

Working hours, time off and calendars are not looked at: they come and go. The three places that tell are
the config import (warning lines), the admin (a warning after a save: ``routing.admin_parts``) and the
booking page (``booking.presenters``: "no times can be booked for this meeting right now" instead of an
endless "Try the next month"). None of them refuses anything: an admin may be half-way through staffing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from routing.core.grids import grids_meet, offset_text, zone_offsets
from routing.models import Pool, PoolMember

# (role, member active, rep active, rep's zone, rep's name) of each member of a pool
_Row = tuple[str, bool, bool, str, str]


def _rows(pool: Pool) -> list[_Row]:
    return list(
        PoolMember.objects.filter(pool=pool)
        .order_by("role", "rep__name", "pk")
        .values_list("role", "active", "rep__active", "rep__timezone", "rep__name")
    )


def _zones(zones: list[str], now: datetime) -> str:
    """``Europe/Berlin UTC+01:00/UTC+02:00, Asia/Kolkata UTC+05:30``: each zone with its offsets in a year."""
    return ", ".join(
        f"{zone} {'/'.join(offset_text(o) for o in zone_offsets(zone, start=now))}" for zone in zones
    )


def _grid_reason(pool: Pool, meeting_type, zones: dict[str, list[str]], now: datetime) -> str | None:
    step = meeting_type.slot_interval_minutes
    if grids_meet(list(zones.values()), step, start=now):
        return None
    choices = meeting_type._meta.get_field("slot_interval_minutes").choices or []
    finer = sorted((value for value, _label in choices if value < step), reverse=True)
    would = next((v for v in finer if grids_meet(list(zones.values()), v, start=now)), None)
    each = "; ".join(f"{role}: {_zones(found, now)}" for role, found in zones.items())
    return (
        f"on its {step}-minute slot grid, which follows each rep's own clock, the roles of pool "
        f"{pool.slug} never share a start ({each})" + (f"; a {would}-minute grid would" if would else "")
    )


def _why(pool: Pool, meeting_type, rows: list[_Row], now: datetime) -> list[str]:
    if not rows:
        return [f"pool {pool.slug} has no members"]
    group = pool.strategy == "group"
    roles: dict[str, list[_Row]] = {}
    for row in rows:
        roles.setdefault(row[0] if group else "", []).append(row)
    reasons: list[str] = []
    zones: dict[str, list[str]] = {}
    for role, members in roles.items():
        found = sorted({zone for _r, active, rep_active, zone, _n in members if active and rep_active})
        if found:
            zones[role] = found
        elif group:
            names = ", ".join(
                f"{name}: {'rep' if active else 'member'} inactive" for _r, active, *_, name in members
            )
            reasons.append(
                f"role {role} of pool {pool.slug} has no active member ({names}), and every meeting needs "
                "one host of each role"
            )
        else:
            reasons.append(f"pool {pool.slug} has no active member (with an active rep)")
    if group and not reasons:
        grid = _grid_reason(pool, meeting_type, zones, now)
        if grid:
            reasons.append(grid)
    return reasons


def why_never_offered(pool: Pool, meeting_type, *, now: datetime | None = None) -> list[str]:
    """Why ``pool`` can never offer ``meeting_type`` (a ``booking.MeetingType``; its slot interval) a time,
    one sentence per reason; empty: it can (or could, as calendars and hours allow)."""
    return _why(pool, meeting_type, _rows(pool), now or timezone.now())


def never_offered(meeting_types: Iterable, *, now: datetime | None = None) -> list[tuple[object, list[str]]]:
    """``(meeting type, reasons)`` for each active meeting type of ``meeting_types`` whose own pool can never
    offer it a time (each pool's members read once)."""
    now = now or timezone.now()
    rows: dict[int, list[_Row]] = {}
    found = []
    for meeting_type in meeting_types:
        if not meeting_type.active:
            continue
        pool = meeting_type.pool
        if pool.pk not in rows:
            rows[pool.pk] = _rows(pool)
        reasons = _why(pool, meeting_type, rows[pool.pk], now)
        if reasons:
            found.append((meeting_type, reasons))
    return found


def meeting_types_of(pool_ids: Iterable[int | None]):
    """The active meeting types whose pool is one of ``pool_ids``, with their pool, by slug."""
    from booking.models import MeetingType  # booking imports routing

    keys = {pk for pk in pool_ids if pk is not None}
    return MeetingType.objects.filter(pool__in=keys, active=True).select_related("pool").order_by("slug")
