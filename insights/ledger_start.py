"""The routing replay's fairness ledger from the database: the ledger at the period's start and the changes
within the period that do not come from replayed bookings (assignments without a booking and their taking
back, bookings decided before the period and changed in it), as ``routing.ledger.pool_ledger`` counts them
live. Read by ``insights.selectors.current_policy``."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from django.db.models import Max, Q

from booking.models import Booking, BookingHost
from insights.history import charges_taken_back, ledger_moves
from insights.sim_types import LedgerMove
from routing.ledger import counted_statuses, override_hosts
from routing.models import LedgerEntry, Pool, PoolMember


def instant_charges(pool: Pool, rep_ids: list[int]):
    """The pool's ledger entries for assignments without a booking (``routing.ledger.pool_ledger``)."""
    return LedgerEntry.objects.filter(
        pool=pool, rep_id__in=rep_ids, kind=LedgerEntry.Kind.ASSIGNED, booking__isnull=True
    )


def moments_taken_back(pool: Pool, rep_ids: list[int]) -> dict[tuple[datetime, int], list[datetime]]:
    """``(created_at, rep_id)`` of each assignment without a booking taken back by a routing by hand → the
    instants the credit actually moved, sorted. The take-back entry is dated at the charge
    (``routing.services.ledger_taken_back``, for the live ledger's periods); the instant of the move is the
    ``at`` of the lead's ``routed_by_hand`` history item (``insights.history.charges_taken_back``)."""
    from leads.instant import INSTANT_REASON
    from leads.models import Lead as LeadRow

    members, found = set(rep_ids), []
    for pk, decision in LeadRow.objects.filter(pool=pool, decision__has_key="manual").values_list(
        "pk", "decision"
    ):
        history = decision.get("history") if isinstance(decision, dict) else None
        for moment, rep_id, entry in charges_taken_back(history if isinstance(history, list) else ()):
            if rep_id in members:  # the charge: a hand-routing's entry, else the instant route's
                found.append((moment, rep_id, entry if entry is not None else f"{INSTANT_REASON}: lead {pk}"))
    if not found:
        return {}
    pks = [ref for _m, _r, ref in found if isinstance(ref, int)]
    reasons = [ref for _m, _r, ref in found if isinstance(ref, str)]
    charges = instant_charges(pool, rep_ids).filter(Q(pk__in=pks) | Q(reason__in=reasons))
    by_ref = {}
    for pk, reason, rep_id, created_at in charges.values_list("pk", "reason", "rep_id", "created_at"):
        by_ref[pk] = by_ref[(reason, rep_id)] = (created_at, rep_id)
    out: dict[tuple[datetime, int], list[datetime]] = defaultdict(list)
    for moment, rep_id, ref in found:
        charge = by_ref.get(ref if isinstance(ref, int) else (ref, rep_id))
        if charge is not None and charge[1] == rep_id:
            out[charge].append(moment)
    return {key: sorted(moments) for key, moments in out.items()}


def unbooked_charges(pool: Pool, rep_ids: list[int], *, start: datetime, end: datetime):
    """The assignments without a booking made before ``end`` (``instant_charges``) as the replay reads them:
    those made before ``start`` that counted at ``start`` (for the starting ledger), those made in ``[start,
    end)`` (``Policy.instant``), each ``(created_at, rep_id)`` in order, and the take-backs in ``[start,
    end)`` (``LedgerMove``). A charge taken back (``routing.ledger.TAKEN_BACK``: a -1 entry of the same rep
    at the same instant; its lead was routed by hand to another rep) counts until the instant the credit
    moved (``moments_taken_back``), where a move takes it back, as the live ledger read it then; one taken
    back before ``start`` is dropped with its take-back, as ``pool_ledger`` sums them, and so is one whose
    moment is not recorded (a lead without that history)."""
    unbooked = Q(kind=LedgerEntry.Kind.ASSIGNED) | Q(kind=LedgerEntry.Kind.REASSIGNED_FROM)
    rows = (
        LedgerEntry.objects.filter(
            unbooked, pool=pool, rep_id__in=rep_ids, booking__isnull=True, created_at__lt=end
        )
        .order_by("created_at", "pk")
        .values_list("created_at", "rep_id", "kind")
    )
    taken_back, charges = Counter(), []
    for at, rep_id, kind in rows:
        if kind == LedgerEntry.Kind.REASSIGNED_FROM:
            taken_back[(at, rep_id)] += 1
        else:
            charges.append((at, rep_id))
    moments = moments_taken_back(pool, rep_ids) if taken_back else {}
    before, during, moves = [], [], []
    for at, rep_id in charges:
        if taken_back[(at, rep_id)] > 0:
            taken_back[(at, rep_id)] -= 1
            known = moments.get((at, rep_id))
            moment = known.pop(0) if known else at
            if moment <= at or moment < start:  # not recorded, or taken back before the period
                continue
            if moment < end:
                moves.append(LedgerMove(moment, rep_id, at, False, stamp=False))  # it stays the last one
        (before if at < start else during).append((at, rep_id))
    return before, tuple(during), moves


def rebuilt_bookings(pool: Pool, rep_ids: list[int], *, start: datetime, end: datetime):
    """The pool's bookings decided before ``start`` and changed since — a reschedule, reassignment,
    cancellation or outcome saves the booking (``updated_at``) — whose host rows and status now are not what
    the ledger counted at ``start``: their pks, and their ledger history up to ``end`` rebuilt from their
    decision history (``insights.history.ledger_moves``), in order."""
    changed = Booking.objects.filter(pool=pool, created_at__lt=start, updated_at__gte=start)
    hosts: dict[int, list[int]] = defaultdict(list)
    rows = BookingHost.objects.filter(booking__in=changed).exclude(released=BookingHost.Released.REASSIGNED)
    for booking_id, rep_id in rows.order_by("pk").values_list("booking_id", "rep_id"):
        hosts[booking_id].append(rep_id)
    pks, moves, members = set(), [], set(rep_ids)
    for pk, decided_at, decision, cancelled_at in changed.values_list(
        "pk", "created_at", "decision", "cancelled_at"
    ):
        pks.add(pk)
        history = (decision or {}).get("history") or []
        for move in ledger_moves(
            decided_at=decided_at,
            history=history,
            hosts_now=hosts[pk],
            cancelled_at=cancelled_at,
            count_cancellations=pool.count_cancellations,
            count_no_shows=pool.count_no_shows,
        ):
            if move.at < end and move.rep_id in members:
                moves.append(move)
    moves.sort(key=lambda m: m.at)  # stable: a booking's moves at one instant keep their order
    return pks, tuple(moves)


def ledger_before(
    pool: Pool, rep_ids: list[int], start: datetime, *, rebuilt: set[int], instant: list[tuple[datetime, int]]
):
    """The fairness ledger at ``start`` from the bookings decided before it that have not changed since
    (``rebuilt``: those that have, whose history ``rebuilt_bookings`` replays), the assignments without a
    booking (``instant``: those that counted at ``start``, from ``unbooked_charges``) and the "joined" deltas:
    counted
    assignment instants, last assignment and "joined" deltas per rep."""
    hosts = BookingHost.objects.filter(
        booking__pool=pool, booking__created_at__lt=start, booking__updated_at__lt=start, rep_id__in=rep_ids
    ).exclude(released=BookingHost.Released.REASSIGNED)
    events: dict[int, list[datetime]] = defaultdict(list)
    statuses = counted_statuses(pool)
    # bookings moved by a non-counting override count for the rep holding each seat's credit, as in
    # ``pool_ledger`` (``routing.ledger.override_hosts``)
    overridden = [r for r in override_hosts(pool, rep_ids) if r.booking_id not in rebuilt]  # a rep: maybe two
    special = {(r.booking_id, r.rep_id) for r in overridden}
    for booking_id, rid, at in hosts.filter(booking__status__in=statuses).values_list(
        "booking_id", "rep_id", "assigned_at"
    ):
        if (booking_id, rid) not in special:
            events[rid].append(at)
    for row in overridden:
        if row.status in statuses and row.assigned_at < start:
            events[row.rep_id].extend([row.assigned_at] * row.credits)
    last = {r["rep_id"]: r["m"] for r in hosts.values("rep_id").annotate(m=Max("assigned_at"))}
    # assignments without a booking (instant routes, leads routed by hand) count like bookings, in the
    # fairness period of each instant (the simulator filters ``events`` by period), as ``pool_ledger`` does
    # (less those taken back before ``start``; the rep keeps one as its last assignment, as ``pool_ledger``
    # reads them)
    for at, rid in instant:
        events[rid].append(at)
    for rid, at in (
        instant_charges(pool, rep_ids).filter(created_at__lt=start).values_list("rep_id", "created_at")
    ):
        if rid not in last or at > last[rid]:
            last[rid] = at
    joined: dict[int, list] = defaultdict(list)  # of the current memberships, as ``pool_ledger`` reads them
    since = dict(PoolMember.objects.filter(pool=pool, rep_id__in=rep_ids).values_list("rep_id", "joined_at"))
    for rid, at, delta in LedgerEntry.objects.filter(
        pool=pool, rep_id__in=rep_ids, kind=LedgerEntry.Kind.JOINED
    ).values_list("rep_id", "created_at", "delta"):
        if rid in since and at >= since[rid]:
            joined[rid].append((at, delta))
    return dict(events), last, dict(joined)
