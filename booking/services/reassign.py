"""Admin-side changes: reassign a booking to another pool member; mark it completed or a no-show."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone as dj_timezone

from booking import emails, outbox
from booking.errors import BookingError, BookingNotActive, InvalidInput, ReassignNotPossible
from booking.models import HOST_ORDER, Booking
from booking.selectors import booking_changeable
from booking.services import locking
from booking.services.manage import _credit_holder, _history, _iso, _move_hosts
from booking.services.routing import blocked_range, host_dicts, hosts_busy_live, seat_role
from routing.core import Interval, why_not_free
from routing.models import PoolMember
from routing.overrides import OverrideCode, override_counts, override_problems, override_reason
from routing.selectors import PoolState, load_pool_state, meeting_spec
from routing.services import ledger_reassigned


def _seat_role(booking: Booking, source, current: list) -> str | None:
    """The role of the seat ``source`` (a host row among the ``current`` ones) holds in a group pool: the
    row's own while some member has that role (an SE promoted to AE hands on an SE seat); else, the role
    having been renamed or the pool made a group pool since (no one could take the seat), its holder's role
    now; for a holder gone from the pool, the one role of the pool the other hosts do not hold. None when
    nothing says (any member may take it)."""
    roles = dict(PoolMember.objects.filter(pool_id=booking.pool_id).values_list("rep_id", "role"))
    seat = seat_role(source.role, roles.get(source.rep_id), set(roles.values()))
    if seat is not None:
        return seat
    held = {roles.get(r.rep_id, r.role) for r in current if r is not source}
    left = set(roles.values()) - held
    return left.pop() if len(left) == 1 else None


def _busy_live(rep_id: int, booking: Booking) -> bool:
    timeout = settings.BOOKING_LIVE_CHECK_TIMEOUT_MS / 1000
    return bool(
        hosts_busy_live(
            [rep_id], *blocked_range(booking.meeting_type, booking.start), timeout_seconds=timeout
        )
    )


def _pool_state(booking: Booking, *, now: datetime) -> PoolState:
    """The booking's pool around its time, the booking itself left out (its hosts are free then)."""
    return load_pool_state(
        booking.pool,
        booking.meeting_type,
        now=now,
        window=Interval(booking.start, booking.end),
        exclude_booking_id=booking.pk,
    )


def _why_not_free(state: PoolState, booking: Booking, rep_id: int, *, now: datetime) -> str | None:
    """The routing rules' reason the rep cannot host the booking at its time (hours, time off, synced busy
    time, another booking), or None."""
    target = next((m for m in state.spec.members if m.rep_id == rep_id), None)
    if target is None:
        return "not a member of the pool"
    return why_not_free(target, meeting_spec(booking.meeting_type), now=now, start=booking.start)


def _refused(booking: Booking, rep_id: int, *, now: datetime) -> bool:
    """What the transaction would refuse without asking the provider, read now: the rep already hosts the
    booking, or the routing rules say the rep is not free then."""
    if booking.hosts.filter(active=True, rep_id=rep_id).exists():
        return True
    return _why_not_free(_pool_state(booking, now=now), booking, rep_id, now=now) is not None


def _ask_before(booking_id: int, to_member_id: int, *, now: datetime) -> dict:
    """The target's live free/busy at the booking's time, asked before the transaction so that a slow
    provider holds no rep locks (as ``booking_create`` does): {(rep, start, end): busy}. Empty when the
    booking or member is not found, or when the transaction would refuse the target anyway (``_refused``):
    the provider is not asked then; the transaction says why, and asks itself only if the state changed
    meanwhile and the target is free by the rules after all."""
    booking = Booking.objects.select_related("meeting_type", "pool").filter(pk=booking_id).first()
    member = PoolMember.objects.filter(pk=to_member_id).first()
    if booking is None or member is None or member.pool_id != booking.pool_id:
        return {}
    try:
        booking_changeable(booking, now=now)
    except BookingError:
        return {}
    if _refused(booking, member.rep_id, now=now):
        return {}
    return {(member.rep_id, booking.start, booking.end): _busy_live(member.rep_id, booking)}


def booking_reassign(
    *,
    booking_id: int,
    to_member_id: int,
    from_rep_id: int | None = None,
    reason: str = "",
    code: str = OverrideCode.OTHER,
    actor: str = "",
    now: datetime | None = None,
) -> Booking:
    """Give the future booking's host seat held by ``from_rep_id`` (default: the only/lead host) to pool
    member ``to_member_id``. The target must be a member of the booking's pool (of the seat's role in a
    ``group`` pool), not already a host, and free at the booking's time (routing rules, live check).
    ``code`` (``routing.overrides.OverrideCode``) says why and decides whether the override counts for
    fairness; ``reason`` is the free-text note (required for ``other``). Recorded in the decision history
    (``code``, ``reason``, ``counts``) and the ledger (``reassigned_from`` / ``reassigned_to``, reason
    ``"<code>: <note>"``, delta 0 when it does not count); hosts and prospect are notified
    (``booking.rescheduled``). A past booking raises ``BookingInPast``."""
    problems = override_problems(code, reason)
    if problems:
        raise InvalidInput(problems)
    counts = override_counts(code)
    ledger_text = override_reason(code, reason)
    now = now or dj_timezone.now()
    asked = _ask_before(booking_id, to_member_id, now=now)

    def run():
        with transaction.atomic(durable=True):
            booking = (
                Booking.objects.select_for_update(of=("self",))
                .select_related("meeting_type", "pool")
                .get(pk=booking_id)
            )
            booking_changeable(booking, now=now)
            member = (
                PoolMember.objects.select_related("rep")
                .filter(pk=to_member_id, pool_id=booking.pool_id)
                .first()
            )
            if member is None:
                raise ReassignNotPossible("That member is not in this booking's pool.")
            rows = list(booking.hosts.select_related("rep").order_by(*HOST_ORDER))
            current = [r for r in rows if r.active]
            if not current:
                raise BookingNotActive("This booking has no active host.")
            source = next((r for r in current if r.rep_id == (from_rep_id or current[0].rep_id)), None)
            if source is None:
                raise ReassignNotPossible("That rep does not host this booking.")
            if member.rep_id in {r.rep_id for r in current}:
                raise ReassignNotPossible("That rep already hosts this booking.")
            seat = _seat_role(booking, source, current)
            if booking.pool.strategy == "group" and seat is not None and member.role != seat:
                # the meeting keeps one host of every role (elsewhere a member's role means nothing)
                raise ReassignNotPossible(
                    f"The {seat!r} seat goes only to a member in that role; "
                    f"{member.rep.name} is {member.role!r}."
                )
            locking.lock_reps([source.rep_id, member.rep_id])
            state = _pool_state(booking, now=now)
            why = _why_not_free(state, booking, member.rep_id, now=now)
            if why is None:
                key = (member.rep_id, booking.start, booking.end)
                busy = asked[key] if key in asked else _busy_live(member.rep_id, booking)
                why = "busy (live calendar)" if busy else None
            if why is not None:
                raise ReassignNotPossible(f"{member.rep.name} is not free then: {why}.")
            new_hosts = {(member.rep_id if r is source else r.rep_id): r.role for r in current}
            new_hosts[member.rep_id] = member.role if booking.pool.strategy == "group" else source.role
            history = list((booking.decision or {}).get("history") or [])
            held = emails.previous(booking, current)  # for the CANCEL of the host it releases
            booking.sequence += 1
            _history(
                booking,
                {
                    "at": _iso(now),
                    "action": "reassigned",
                    "from": source.rep_id,
                    "to": member.rep_id,
                    "code": code,
                    "reason": reason[:300],
                    "counts": counts,
                    "by": actor,
                },
            )
            booking.save()
            active, released = _move_hosts(booking, rows, new_hosts, now=now)
            holder = _credit_holder(history, source.rep_id)
            ledger_reassigned(
                pool_id=booking.pool_id,
                booking_id=booking.pk,
                from_rep_ids=[holder],
                to_rep_ids=[member.rep_id],
                reason=ledger_text,
                counts=counts,
            )
            if counts and holder != source.rep_id:  # the source held no credit: it loses nothing
                ledger_reassigned(
                    pool_id=booking.pool_id,
                    booking_id=booking.pk,
                    from_rep_ids=[source.rep_id],
                    to_rep_ids=[],
                    reason=ledger_text,
                    counts=False,
                )
            outbox.emit(
                "booking.rescheduled",
                booking,
                context={
                    "hosts": host_dicts(active, state.members),
                    "released": host_dicts(released, {}),
                    "previous": held,
                    "added": [member.rep_id],
                    "reason": reason,
                    "code": code,
                },
                now=now,
            )
            return booking

    return locking.conflicts(run)


def booking_set_outcome(*, booking_id: int, status: str, now: datetime | None = None) -> Booking:
    """Mark a booking as ``completed`` or ``no_show`` without recording an outcome (admin shortcut; prefer
    ``booking.services.outcomes.booking_outcome_record``). A no-show credits fairness back when the pool
    does not count no-shows. Hosts stay (the time was spent)."""
    from booking.services.outcomes import booking_status_apply

    if status not in (Booking.Status.COMPLETED, Booking.Status.NO_SHOW):
        raise ValueError(f"unsupported outcome {status!r}")
    now = now or dj_timezone.now()

    def run():
        with transaction.atomic(durable=True):
            rows = Booking.objects.select_for_update(of=("self",)).select_related("pool")
            booking = rows.get(pk=booking_id)
            if booking_status_apply(booking, status, now=now):
                _history(booking, {"at": _iso(now), "action": status})
                booking.save()
            return booking

    return locking.conflicts(run)
