"""Admin-side changes: reassign a booking to another pool member; mark it completed or a no-show."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone as dj_timezone

from booking import emails, outbox
from booking.admin_decision import REASONS
from booking.errors import (
    BookingChanged,
    BookingError,
    BookingNotActive,
    BookingNotFound,
    BookingNotStarted,
    InvalidInput,
    ReassignNotPossible,
)
from booking.models import HOST_ORDER, Booking, ManageLink
from booking.presenters import manage_url
from booking.selectors import booking_changeable, token_hash
from booking.services import locking
from booking.services.manage import _credit_holder, _history, _iso, _move_hosts
from booking.services.routing import host_dicts, hosts_busy_live, seat_role
from routing.core import Interval, MeetingSpec, why_not_free
from routing.models import PoolMember
from routing.overrides import OverrideCode, override_counts, override_problems, override_reason
from routing.selectors import PoolState, load_pool_state, meeting_spec
from routing.services import ledger_reassigned

# why a withheld rep (``calendars.selectors.calendar_health``: a calendar stale, never synced or disconnected)
# cannot be given a booking: Baton cannot see their busy time
WITHHELD = "their calendar has not synced recently (availability unknown)"


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


def _blocked(booking: Booking, current: list) -> tuple[datetime, datetime]:
    """The time the booking blocks for its hosts, as it was booked: its own start and end widened by the
    buffers its active host rows were written with (``routing.host_rows``, ``manage._move_hosts``), not by
    the meeting type's duration and buffers now (they may have changed since). Without a host row, the
    meeting type's buffers around the booking's own time."""
    lo, hi = booking.start, booking.end
    if not current:
        meeting_type = booking.meeting_type
        return (
            lo - timedelta(minutes=meeting_type.buffer_before_minutes),
            hi + timedelta(minutes=meeting_type.buffer_after_minutes),
        )
    return min(lo, *(r.blocked_start for r in current)), max(hi, *(r.blocked_end for r in current))


def _minutes(span: timedelta) -> int:
    return -(-int(span.total_seconds()) // 60)  # whole minutes, rounded up: never less than booked


def _booked_spec(booking: Booking, blocked: tuple[datetime, datetime]) -> MeetingSpec:
    """The meeting as booked, for the routing rules: its own length and buffers (``_blocked``)."""
    return replace(
        meeting_spec(booking.meeting_type),
        duration_minutes=max(1, _minutes(booking.end - booking.start)),
        buffer_before_minutes=_minutes(booking.start - blocked[0]),
        buffer_after_minutes=_minutes(blocked[1] - booking.end),
    )


def _busy_live(rep_id: int, blocked: tuple[datetime, datetime]) -> bool:
    timeout = settings.BOOKING_LIVE_CHECK_TIMEOUT_MS / 1000
    return bool(hosts_busy_live([rep_id], *blocked, timeout_seconds=timeout))


def _pool_state(booking: Booking, blocked: tuple[datetime, datetime], *, now: datetime) -> PoolState:
    """The booking's pool around its blocked time, the booking itself left out (its hosts are free then)."""
    return load_pool_state(
        booking.pool,
        booking.meeting_type,
        now=now,
        window=Interval(*blocked),
        exclude_booking_id=booking.pk,
    )


def _why_not_free(
    state: PoolState, booking: Booking, blocked: tuple[datetime, datetime], rep_id: int, *, now: datetime
) -> str | None:
    """The routing rules' reason, in words, the rep cannot host the booking at its time as booked (inactive,
    a calendar Baton cannot read, hours and date overrides, time off, daily caps, synced busy time or another
    booking, with the buffers), or None. The rules of offering a start to a prospect (notice, horizon, slot
    grid) do not apply: the meeting exists; an admin can give any future booking to a free member."""
    target = next((m for m in state.spec.members if m.rep_id == rep_id), None)
    if target is None:
        return "not a member of the pool"
    member = state.members[rep_id]
    if rep_id in state.withheld and member.active and member.rep.active:  # load_pool_state: "inactive"
        return WITHHELD
    spec = _booked_spec(booking, blocked)
    code = why_not_free(target, spec, now=now, start=booking.start, booking_rules=False)
    return None if code is None else REASONS.get(code, code)


def _refused(booking: Booking, rep_id: int, *, now: datetime) -> tuple[datetime, datetime] | None:
    """What the transaction would refuse without asking the provider, read now: None when the rep already
    hosts the booking or the routing rules say the rep is not free then; else the booking's blocked time."""
    current = list(booking.hosts.filter(active=True))
    if any(r.rep_id == rep_id for r in current):
        return None
    blocked = _blocked(booking, current)
    if _why_not_free(_pool_state(booking, blocked, now=now), booking, blocked, rep_id, now=now) is not None:
        return None
    return blocked


def _ask_before(booking_id: int, to_member_id: int, *, now: datetime) -> dict:
    """The target's live free/busy at the booking's blocked time, asked before the transaction so that a
    slow provider holds no rep locks (as ``booking_create`` does): {(rep, blocked start, blocked end): busy}.
    Empty when the booking or member is not found, or when the transaction would refuse the target anyway
    (``_refused``): the provider is not asked then; the transaction says why, and asks itself only if the
    state changed meanwhile and the target is free by the rules after all."""
    booking = Booking.objects.select_related("meeting_type", "pool").filter(pk=booking_id).first()
    member = PoolMember.objects.filter(pk=to_member_id).first()
    if booking is None or member is None or member.pool_id != booking.pool_id:
        return {}
    try:
        booking_changeable(booking, now=now)
    except BookingError:
        return {}
    blocked = _refused(booking, member.rep_id, now=now)
    if blocked is None:
        return {}
    return {(member.rep_id, *blocked): _busy_live(member.rep_id, blocked)}


def booking_reassign(
    *,
    booking_id: int,
    to_member_id: int,
    from_rep_id: int | None = None,
    reason: str = "",
    code: str = OverrideCode.OTHER,
    actor: str = "",
    now: datetime | None = None,
    expected_sequence: int | None = None,
) -> Booking:
    """Give the future booking's host seat held by ``from_rep_id`` (default: the only/lead host) to pool
    member ``to_member_id``. The target must be a member of the booking's pool (of the seat's role in a
    ``group`` pool), not already a host, and free for the booking's time as booked, its buffers included
    (routing rules, live check; not notice, horizon or slot grid: ``_why_not_free``).
    ``code`` (``routing.overrides.OverrideCode``) says why and decides whether the override counts for
    fairness; ``reason`` is the free-text note (required for ``other``). Recorded in the decision history
    (``code``, ``reason``, ``counts``) and the ledger (``reassigned_from`` / ``reassigned_to``, reason
    ``"<code>: <note>"``, delta 0 when it does not count); hosts and prospect are notified
    (``booking.rescheduled``). A past booking raises ``BookingInPast``. ``expected_sequence``: the
    booking's ``sequence`` as the caller saw it (the admin's reassign page); if the booking changed since
    (reassigned, rescheduled: checked under its row lock), ``BookingChanged`` and nothing is changed."""
    problems = override_problems(code, reason)
    if problems:
        raise InvalidInput(problems)
    counts = override_counts(code)
    ledger_text = override_reason(code, reason)
    now = now or dj_timezone.now()
    asked = _ask_before(booking_id, to_member_id, now=now)

    def run():
        with locking.change():
            booking = (
                Booking.objects.select_for_update(of=("self",))
                .select_related("meeting_type", "pool")
                .get(pk=booking_id)
            )
            booking_changeable(booking, now=now)
            if expected_sequence is not None and booking.sequence != expected_sequence:
                raise BookingChanged()
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
            blocked = _blocked(booking, current)
            state = _pool_state(booking, blocked, now=now)
            why = _why_not_free(state, booking, blocked, member.rep_id, now=now)
            if why is None:
                key = (member.rep_id, *blocked)
                busy = asked[key] if key in asked else _busy_live(member.rep_id, blocked)
                why = REASONS["busy_live"] if busy else None
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
            active, released = _move_hosts(booking, rows, new_hosts, blocked=blocked, now=now)
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
            # the prospect's e-mail carries a manage link as every other one does: a new token (the first
            # is known only by its hash); the links sent before keep working
            link = secrets.token_urlsafe(32)
            ManageLink.objects.create(booking=booking, token_hash=token_hash(link), created_at=now)
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
                secrets={"manage_url": manage_url(link)},
                now=now,
            )
            return booking

    return locking.conflicts(run)


def booking_set_outcome(*, booking_id: int, status: str, now: datetime | None = None) -> Booking:
    """Mark a booking as ``completed`` or ``no_show`` without recording an outcome (admin shortcut; prefer
    ``booking.services.outcomes.booking_outcome_record``). A no-show credits fairness back when the pool
    does not count no-shows. Hosts stay (the time was spent). Raises like ``booking_outcome_record``:
    ``BookingNotFound``, ``BookingNotActive`` (cancelled), ``BookingNotStarted`` (not started yet)."""
    from booking.services.outcomes import booking_status_apply

    if status not in (Booking.Status.COMPLETED, Booking.Status.NO_SHOW):
        raise ValueError(f"unsupported outcome {status!r}")
    now = now or dj_timezone.now()

    def run():
        with locking.change():
            rows = Booking.objects.select_for_update(of=("self",)).select_related("pool")
            booking = rows.filter(pk=booking_id).first()
            if booking is None:
                raise BookingNotFound()
            if booking.status == Booking.Status.CANCELLED:
                raise BookingNotActive("A cancelled booking has no outcome.")
            if booking.start > now:  # as ``booking_outcome_record``: the meeting is still on the calendars
                raise BookingNotStarted()
            if booking_status_apply(booking, status, now=now):
                _history(booking, {"at": _iso(now), "action": status})
                booking.save()
            return booking

    return locking.conflicts(run)
