"""Write side of routing: pool membership and the fairness ledger.

Counts are derived from bookings (``routing.ledger``); ``LedgerEntry`` rows are the audit trail of every
change to a member's standing and explain a decision afterwards. The exceptions, which ``routing.ledger``
also reads: the "joined at mean load" delta, to let a joiner's head start (or a standing kept across a
change of the pool's fairness settings or a member's weight) expire with its period, and the
entries without a booking: assignments of leads handed to a rep now or routed by hand (``ledger_assigned``)
and their taking back when such a lead moves to another rep (``ledger_taken_back``).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from routing import sqlwrites
from routing.models import LedgerEntry, Pool, PoolMember, Rep

Kind = LedgerEntry.Kind


def pool_member_join(
    member: PoolMember,
    *,
    now: datetime | None = None,
    reason: str = "",
    joining: Collection[int] = frozenset(),
) -> LedgerEntry:
    """Start a (newly added or re-activated) member at the pool's mean load.

    The mean is over the OTHER active members (member and rep active); in a group pool over those of the
    member's role (each meeting takes one of every role, so the roles' loads differ by design: an SE joining
    at the mean of AEs and SEs together took every SE seat until caught up). The member's ``adjustment`` is
    changed so that ``count / weight`` equals that mean, and a ``joined`` ledger entry records the change.
    With no other active member the mean is 0. Call it after saving the ``PoolMember`` row. ``joining``:
    ids of members joining in the same change, not yet at the mean, which it leaves out (so the members a
    change adds all start at the same mean, whatever the order they are joined in).
    """
    from routing.ledger import member_count, pool_ledger

    now = now or timezone.now()
    with transaction.atomic():
        member = PoolMember.objects.select_for_update().select_related("pool").get(pk=member.pk)
        rows = list(PoolMember.objects.filter(pool_id=member.pool_id).select_related("rep"))
        ledger = pool_ledger(member.pool, [m.rep_id for m in rows], now=now)
        group = member.pool.strategy == "group"
        loads = [
            member_count(m, ledger) / m.weight
            for m in rows
            if m.pk != member.pk
            and m.pk not in joining
            and m.active
            and m.rep.active
            and (not group or m.role == member.role)
        ]
        mean = sum(loads) / len(loads) if loads else 0.0
        target = mean * member.weight
        delta = target - member_count(member, ledger)
        PoolMember.objects.filter(pk=member.pk).update(adjustment=F("adjustment") + delta)
        return LedgerEntry.objects.create(
            pool_id=member.pool_id,
            rep_id=member.rep_id,
            kind=Kind.JOINED,
            delta=delta,
            reason=(reason or f"joined at mean load {mean:.2f}")[:300],
        )


def rep_rejoin(
    rep: Rep,
    *,
    now: datetime | None = None,
    reason: str = "",
    skip: set[int] = frozenset(),
    joining: Collection[int] = frozenset(),
) -> int:
    """A rep made active again starts at the mean load of each pool they are an active member of, as a
    member made active again does (``pool_member_join``): while the rep was inactive the others took their
    share, and with a long fairness period the returning rep would otherwise get every booking until
    caught up. ``skip``: member ids joined already; ``joining``: as for ``pool_member_join``. Returns how
    many memberships joined."""
    members = [m for m in PoolMember.objects.filter(rep=rep, active=True) if m.pk not in skip]
    for member in members:
        pool_member_join(member, now=now, reason=reason or "the rep was made active again", joining=joining)
    return len(members)


# What a member's load depends on besides its bookings: changing one re-reads the whole period (the weight
# divides every booking of it, another period or another way of counting cancelled bookings counts others,
# a change into or out of ``group`` merges or splits the per-role queues), so ``pool_keep_standings`` keeps
# every member's standing across the change.
STANDING_SETTINGS = frozenset({"fairness_period", "strategy", "count_cancellations", "count_no_shows"})


@dataclass(frozen=True)
class Standings:
    """What a pool's members' loads were read with before a change: the pool's settings (a copy) and each
    active member's (member and rep active) role and weight. ``pool_keep_standings`` reads the loads under
    these and under the new settings at the same moment, after the change is written, so a booking made
    meanwhile counts under both."""

    pool: Pool
    members: dict[int, tuple[str, float]]  # member id -> (role, weight)


def pool_standings(pool: Pool) -> Standings:
    """``Standings`` of ``pool``'s settings as given — a copy with the settings before a change will do —
    and its members as stored: read before a change is written, for ``pool_keep_standings`` after it."""
    rows = PoolMember.objects.filter(pool_id=pool.pk, active=True, rep__active=True)
    return Standings(copy.copy(pool), {pk: (r, w) for pk, r, w in rows.values_list("pk", "role", "weight")})


def _queue(pool: Pool, role: str) -> str:
    """A member's fairness queue: its role in a group pool (each meeting takes one of every role), else
    the pool's one queue."""
    return role if pool.strategy == "group" else ""


def pool_keep_standings(
    pool: Pool,
    before: Standings,
    *,
    now: datetime | None = None,
    reason: str,
    joining: Collection[int] = frozenset(),
) -> list[LedgerEntry]:
    """After a change of the pool's fairness settings (``STANDING_SETTINGS``) or of members' weights, all
    written already: keep each member's standing, so that the change applies from now on instead of
    re-reading the bookings already made (a weight raised to 2 halved the member's load at once and handed
    it a run of bookings; another fairness period left a recent joiner's head start, computed for the old
    one, far off the others; a group pool made a round-robin pool put its SEs, who host every meeting, far
    ahead of its AEs). ``before``: ``pool_standings`` read before the change.

    Each member active before and after (and not in ``joining``: those join at the mean afterwards,
    ``pool_member_join``) keeps its load when its queue holds only members of one queue before (a change of
    period, weight or counting, or a queue split by a change into ``group``); a queue merged from several
    (a change out of ``group``) starts at the mean of their loads, each member as far above or below it as
    it stood from its old queue's mean. The difference is added to the member's ``adjustment`` and recorded
    as a ``joined`` ledger entry: like a joiner's head start it is relative to the current period's
    bookings, and is spent with that period (``routing.ledger``). Returns the entries written.

    Both ledgers are read and the entries written in one transaction under the members' booking locks
    (``locking.lock_reps``; on SQLite the ``BEGIN IMMEDIATE`` transaction): a booking of a member waits
    and counts after the change. Read without them, a booking committed between the two reads counted
    under the new settings only, and the entry written cancelled its credit."""
    from booking.services import locking
    from routing.ledger import member_count, pool_ledger

    now = now or timezone.now()
    pool = Pool.objects.get(pk=pool.pk)
    kept = [
        m
        for m in PoolMember.objects.filter(pool_id=pool.pk, active=True, rep__active=True)
        if m.pk in before.members and m.pk not in joining
    ]
    if not kept:
        return []
    rep_ids = [m.rep_id for m in kept]
    entries = []
    with transaction.atomic():
        locking.lock_reps(rep_ids)  # sorted, with BOOKING_LOCK_TIMEOUT_MS: bookings of these reps wait
        then, ledger = pool_ledger(before.pool, rep_ids, now=now), pool_ledger(pool, rep_ids, now=now)
        was: dict[int, tuple[str, float]] = {}  # member id -> (old queue, load under the old settings)
        for m in kept:
            role, weight = before.members[m.pk]
            was[m.pk] = (_queue(before.pool, role), member_count(m, then) / weight)
        old_loads: dict[str, list[float]] = defaultdict(list)
        for queue, load in was.values():
            old_loads[queue].append(load)
        old_mean = {queue: fmean(loads) for queue, loads in old_loads.items()}
        queues: dict[str, list[PoolMember]] = defaultdict(list)
        for m in kept:
            queues[_queue(pool, m.role)].append(m)
        for members in queues.values():
            merged = len({was[m.pk][0] for m in members}) > 1
            level = fmean(was[m.pk][1] for m in members)  # a merged queue's start: its members' mean
            for m in members:
                old_queue, target = was[m.pk]
                if merged:
                    target = level + target - old_mean[old_queue]  # as far from the mean as it stood
                count = member_count(m, ledger)
                if math.isclose(target * m.weight, count, rel_tol=1e-9, abs_tol=1e-9):
                    continue
                delta = target * m.weight - count
                PoolMember.objects.filter(pk=m.pk).update(adjustment=F("adjustment") + delta)
                entries.append(
                    LedgerEntry.objects.create(
                        pool_id=pool.pk,
                        rep_id=m.rep_id,
                        kind=Kind.JOINED,
                        delta=delta,
                        reason=f"{reason}: standing kept at load {target:.2f}"[:300],
                    )
                )
    return entries


def member_adjust(member: PoolMember, *, delta: float, reason: str) -> LedgerEntry:
    """A manual fairness adjustment: ``delta`` is added to the member's count (positive = fewer bookings)."""
    with transaction.atomic():
        PoolMember.objects.filter(pk=member.pk).update(adjustment=F("adjustment") + delta)
        return LedgerEntry.objects.create(
            pool_id=member.pool_id, rep_id=member.rep_id, kind=Kind.ADJUSTED, delta=delta, reason=reason[:300]
        )


def ledger_assigned(
    *, pool_id: int, booking_id: int | None, rep_ids: Iterable[int], reason: str = ""
) -> None:
    """One ``assigned`` (+1) entry per host of a new booking; without a booking (a lead handed to a rep now,
    or routed by hand) the entry itself is what ``routing.ledger.pool_ledger`` counts."""
    sqlwrites.insert(assigned_entries(pool_id=pool_id, booking_id=booking_id, rep_ids=rep_ids, reason=reason))


def assigned_entries(
    *,
    pool_id: int,
    booking_id: int | None = None,
    booking=None,
    rep_ids: Iterable[int],
    reason: str = "",
) -> list[LedgerEntry]:
    """``ledger_assigned``'s entries, not saved (for ``routing.sqlwrites.insert_many``); ``booking``: the
    booking instance itself, which may be saved in the same ``insert_many``."""
    link = {"booking": booking} if booking is not None else {"booking_id": booking_id}
    return [
        LedgerEntry(pool_id=pool_id, rep_id=rid, kind=Kind.ASSIGNED, delta=1.0, reason=reason[:300], **link)
        for rid in rep_ids
    ]


def ledger_taken_back(charge: LedgerEntry, *, reason: str) -> LedgerEntry:
    """Take an assignment without a booking (``charge``: an instant route's or a hand-routing's ``assigned``
    +1) back from its rep, whose lead went to another rep: a ``reassigned_from`` -1 entry without a booking,
    for the same rep and pool, dated at the charge, so that ``routing.ledger.pool_ledger`` (``TAKEN_BACK``)
    counts the two in the same fairness periods: the rep loses exactly the credit the lead gave them, in
    the period it counted in. When the entry was written is in its ``reason`` and the lead's history."""
    entry = LedgerEntry.objects.create(
        pool_id=charge.pool_id,
        rep_id=charge.rep_id,
        kind=Kind.REASSIGNED_FROM,
        delta=-1.0,
        reason=reason[:300],
    )
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=charge.created_at)  # ``auto_now_add`` set now
    entry.created_at = charge.created_at
    return entry


def ledger_released(
    *, pool: Pool, booking_id: int, rep_ids: Iterable[int], status: str, reason: str = ""
) -> int:
    """Credit back (-1, ``credited``) each host of a booking that became ``cancelled`` or ``no_show`` when
    the pool does not count that status. Returns the number of entries written."""
    counts = pool.count_cancellations if status == "cancelled" else pool.count_no_shows
    if counts:
        return 0
    entries = [
        LedgerEntry(
            pool_id=pool.pk,
            booking_id=booking_id,
            rep_id=rid,
            kind=Kind.CREDITED,
            delta=-1.0,
            reason=(reason or status)[:300],
        )
        for rid in rep_ids
    ]
    LedgerEntry.objects.bulk_create(entries)
    return len(entries)


def ledger_reassigned(
    *,
    pool_id: int,
    booking_id: int,
    from_rep_ids: Iterable[int],
    to_rep_ids: Iterable[int],
    reason: str,
    counts: bool = True,
) -> None:
    """``reassigned_from`` (-1) per host that lost the booking, ``reassigned_to`` (+1) per new host. With
    ``counts=False`` (a non-counting override, ``routing.overrides``) both are written with delta 0: the old
    host keeps the credit and the new one is not charged (``routing.ledger.pool_ledger``)."""
    step = 1.0 if counts else 0.0
    entries = [
        LedgerEntry(
            pool_id=pool_id,
            booking_id=booking_id,
            rep_id=rid,
            kind=Kind.REASSIGNED_FROM,
            delta=-step or 0.0,
            reason=reason[:300],
        )
        for rid in from_rep_ids
    ] + [
        LedgerEntry(
            pool_id=pool_id,
            booking_id=booking_id,
            rep_id=rid,
            kind=Kind.REASSIGNED_TO,
            delta=step,
            reason=reason[:300],
        )
        for rid in to_rep_ids
    ]
    LedgerEntry.objects.bulk_create(entries)
