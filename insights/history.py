"""A booking's recorded decision history (``Booking.decision["history"]``) as the replay reads it. No database
access.

The entries are written by ``booking.services.manage`` (``rescheduled``: the hosts it had in ``from.hosts``
and whether it kept them; ``cancelled``), ``booking.services.reassign`` (``reassigned``: one seat ``from`` a
rep ``to`` another, ``counts`` for fairness or not; ``completed`` / ``no_show`` from the admin shortcut) and
``booking.services.outcomes`` (``outcome``, with the booking's ``status`` after it). Each has its instant in
``at``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from insights.sim_types import LedgerMove


def instant_of(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _status_of(entry: dict) -> str | None:
    """The booking status an outcome entry left (``completed`` or ``no_show``); None for other entries."""
    action = entry.get("action")
    if action == "outcome":
        return entry.get("status")
    return action if action in ("completed", "no_show") else None


def no_show_changes(history: Sequence) -> list[tuple[datetime, bool]]:
    """The instants the booking was recorded as a no-show (``False``: from then it does not count for
    fairness in a pool that does not count no-shows) or a no-show was corrected to another outcome
    (``True``: it counts again), in order."""
    changes, no_show = [], False
    for e in history:
        status = _status_of(e) if isinstance(e, dict) and e.get("at") else None
        if status is not None and (status == "no_show") != no_show:
            no_show = not no_show
            changes.append((instant_of(e["at"]), not no_show))
    return changes


def _host_changes(history: Sequence, hosts_now: Sequence[int]) -> tuple[list[int], dict[int, tuple]]:
    """The booking's first hosts and, by history index, the hosts before and after each entry that changed
    them, rebuilt backwards from its hosts now: a reschedule that routed it again records the hosts it had
    (``from.hosts``), a reassignment the rep (``from``) whose seat it gave to another (``to``)."""
    after, changes = list(hosts_now), {}
    for i in range(len(history) - 1, -1, -1):
        e = history[i]
        if not isinstance(e, dict) or not e.get("at"):
            continue
        if e.get("action") == "rescheduled" and not e.get("kept_hosts") and isinstance(e.get("from"), dict):
            before = [int(r) for r in e["from"].get("hosts") or ()]
        elif e.get("action") == "reassigned" and isinstance(e.get("from"), int) and e.get("to") in after:
            before = [e["from"] if r == e["to"] else r for r in after]
        else:
            continue
        changes[i] = (before, after)
        after = before
    return after, changes


def hosts_at(history: Sequence, hosts_now: Sequence[int], end: datetime | None) -> tuple[int, ...]:
    """The booking's hosts as they stood at ``end``: its hosts now rewound through the entries at or after
    ``end`` that changed them (``_host_changes``: reassignments, reschedules that routed it again)."""
    if end is not None:
        _first, changes = _host_changes(history, hosts_now)
        for i in sorted(changes):
            if instant_of(history[i]["at"]) >= end:
                return tuple(changes[i][0])
    return tuple(hosts_now)


@dataclass
class _Seat:
    """A host's seat: when the host got it (its host row's ``assigned_at``) and who holds its fairness
    credit from when: the host, unless a non-counting override seated it (then the rep it left)."""

    stamp: datetime
    holder: int
    credited: datetime


def ledger_moves(
    *,
    decided_at: datetime,
    history: Sequence,
    hosts_now: Sequence[int],
    cancelled_at: datetime | None,
    count_cancellations: bool,
    count_no_shows: bool,
) -> list[LedgerMove]:
    """The booking's fairness-ledger history as ``routing.ledger.pool_ledger`` counted it over time, in
    order. Its first hosts count from its decision; a reschedule that routed it again takes the assignment
    from the hosts it released (and the credit from whoever held it) and gives the hosts it added theirs
    from then; a reassignment gives the seat to its new host, with the credit if it counts, else the credit
    stays where it was (``routing.credit.credit_holder``); while the booking is a no-show (a pool
    not counting no-shows) or after it was cancelled (not counting cancellations) no credit counts, though
    the assignments stay. ``hosts_now``: the reps of its host rows not reassigned away."""
    first, changes = _host_changes(history, hosts_now)
    moves: list[LedgerMove] = []
    seats: dict[int, _Seat] = {}
    counting = True

    def take(rep_id: int, at: datetime, holder: _Seat | None = None) -> None:
        """``rep_id`` gets a seat at ``at``: with its own credit, or with ``holder``'s (no new credit)."""
        seats[rep_id] = _Seat(at, rep_id, at) if holder is None else _Seat(at, holder.holder, holder.credited)
        moves.append(LedgerMove(at, rep_id, at, True, counts=counting and holder is None))

    def leave(rep_id: int, at: datetime, *, credit: bool) -> _Seat:
        """``rep_id`` leaves its seat at ``at`` (its host row is released as reassigned), and the seat's
        credit leaves the ledger too if ``credit``."""
        seat = seats.pop(rep_id)
        moves.append(LedgerMove(at, rep_id, seat.stamp, False, counts=False))
        if credit and counting:
            moves.append(LedgerMove(at, seat.holder, seat.credited, False, stamp=False))
        return seat

    def credits(at: datetime, gained: bool) -> None:
        """Every seat's credit starts or stops counting at ``at`` (the booking's status changed)."""
        for seat in seats.values():
            moves.append(LedgerMove(at, seat.holder, seat.credited, gained, stamp=False))

    for rep_id in first:
        take(rep_id, decided_at)
    for i, e in enumerate(history):
        status = _status_of(e) if isinstance(e, dict) and e.get("at") and not count_no_shows else None
        if i in changes:
            at, (before, after) = instant_of(e["at"]), changes[i]
            if e["action"] == "reassigned" and not e.get("counts", True):
                if e["from"] in seats:  # a non-counting override: the credit stays with its holder
                    take(e["to"], at, holder=leave(e["from"], at, credit=False))
                continue
            for rep_id in before:
                if rep_id not in after and rep_id in seats:
                    leave(rep_id, at, credit=True)
            for rep_id in after:
                if rep_id not in before:
                    take(rep_id, at)
        elif status is not None and (status != "no_show") != counting:  # a no-show, or one corrected
            counting = not counting
            credits(instant_of(e["at"]), counting)
    if cancelled_at is not None and not count_cancellations and counting:
        credits(cancelled_at, False)
    return moves


def held_after(moves: Iterable[LedgerMove]) -> tuple[dict[int, list[datetime]], dict[int, list[datetime]]]:
    """What ``moves`` (in order) leave per rep: the instants of its assignments that count for fairness and
    of all its assignments (the latest of which is its last assignment), each sorted."""
    counted: Counter = Counter()
    stamps: Counter = Counter()
    for m in moves:
        for held, changed in ((counted, m.counts), (stamps, m.stamp)):
            if changed:
                held[(m.rep_id, m.assigned_at)] += 1 if m.gained else -1
    out: tuple[dict, dict] = ({}, {})
    for held, by_rep in zip((counted, stamps), out, strict=True):
        for (rep_id, at), n in sorted(held.items(), key=lambda item: item[0][1]):
            if n > 0:
                by_rep.setdefault(rep_id, []).extend([at] * n)
    return out


def charges_taken_back(history: Sequence) -> list[tuple[datetime, int, int | None]]:
    """A lead's charges taken back by routings by hand, from its decision history
    (``Lead.decision["history"]``, written by ``leads.manual.lead_route_by_hand``): per ``routed_by_hand``
    item that took a charge back (``credit_from``: its rep), the instant the credit moved (its ``at``), that
    rep and the charge's ledger entry as ``leads.manual.lead_charge`` found it: the ``ledger_entry`` of the
    latest item before that names one, None for the lead's instant route. The take-back entry itself is
    dated at the charge (``routing.services.ledger_taken_back``), so this is where the instant of the move
    is kept."""
    out: list[tuple[datetime, int, int | None]] = []
    charge = None
    for e in history:
        if not isinstance(e, dict):
            continue
        if e.get("action") == "routed_by_hand" and isinstance(e.get("credit_from"), int) and e.get("at"):
            out.append((instant_of(e["at"]), e["credit_from"], charge))
        if isinstance(e.get("ledger_entry"), int):
            charge = e["ledger_entry"]
    return out
