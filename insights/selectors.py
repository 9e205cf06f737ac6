"""Read side of insights: load simulator inputs (policies, recorded leads) from the database.

The pool's calendars come from ``routing.selectors.load_pool_state`` — the loader live booking uses — with
the bookings being replayed taken back out, so a replay starts from the calendars (``BusyInterval`` rows,
time off, hours) plus every booking that is not part of the replay; synced busy rows are then set back to
what the syncs had stored at the period's start, and their later changes replayed at their sync instants
(``calendars.selectors.busy_timeline``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

from booking.models import Booking, BookingHost, MeetingType
from calendars.selectors import busy_timeline
from insights.history import held_after, hosts_at, instant_of, no_show_changes
from insights.ledger_start import ledger_before, rebuilt_bookings, unbooked_charges
from insights.sim_types import Move
from insights.simulator import Lead, Policy, PriorBooking
from routing.configfile import ConfigInvalid, load_document, parse_config
from routing.core import Interval
from routing.models import Pool
from routing.selectors import MARGIN, load_pool_state, meeting_spec
from routing.sqlrows import among_subquery


def replay_bookings(pool: Pool, *, start: datetime, end: datetime) -> list[Booking]:
    """The pool's bookings whose routing decision falls in ``[start, end)``, in decision order. A booking's
    decision instant is its ``created_at`` (``booking_create`` sets it to the instant it routed the booking,
    its first hosts' ``assigned_at``); not its host rows' earliest ``assigned_at``: a reschedule or
    reassignment that makes an old host row active again sets that row's to its own instant."""
    rows = (
        Booking.objects.filter(pool=pool, created_at__gte=start, created_at__lt=end)
        .select_related("meeting_type", "pool")
        .order_by("created_at", "pk")
    )
    return list(rows)


def _route_of(booking: Booking):
    """The ``leads.tokens.Route`` a booking was made with, rebuilt from its decision record (None: none)."""
    from leads.tokens import Route

    record = (booking.decision or {}).get("route")
    if not isinstance(record, dict):
        return None
    candidates = record.get("candidates")
    return Route(
        pool=booking.pool,
        rep_ids=None if candidates is None else frozenset(int(r) for r in candidates),
        lead_id=record.get("lead_id"),
        ranks={int(k): int(v) for k, v in (record.get("ranks") or {}).items()},
        factors={int(k): float(v) for k, v in (record.get("factors") or {}).items()},
    )


def _lead_decisions(bookings: list[Booking], routes: dict) -> dict[int, dict]:
    """Booking pk → the routing-rules decision recorded live for its lead (``leads.Lead.decision``)."""
    from leads.models import Lead as LeadRow

    lead_ids = {r.lead_id: pk for pk, r in routes.items() if r is not None and r.lead_id is not None}
    rows = LeadRow.objects.filter(
        Q(booking_id__in=among_subquery([b.pk for b in bookings])) | Q(pk__in=among_subquery(lead_ids))
    )
    out: dict[int, dict] = {}
    for pk, booking_id, decision in rows.values_list("pk", "booking_id", "decision"):
        key = booking_id if booking_id in routes else lead_ids.get(pk)
        if key is not None and isinstance(decision, dict):
            out.setdefault(key, decision)
    return out


def _moves(booking: Booking, record: dict, end: datetime | None):
    """From the booking's decision history (``rescheduled`` entries): its original start, its reschedules
    before ``end`` (``Move``) and the reps found busy live at its first decision — unknown (none) once a
    reschedule routed it again, which replaced the decision record."""
    entries = [
        e
        for e in record.get("history") or ()
        if isinstance(e, dict)
        and e.get("action") == "rescheduled"
        and e.get("at")
        and e.get("to")
        and isinstance(e.get("from"), dict)
        and e["from"].get("start")
    ]
    live_busy = frozenset(record.get("live_busy", ()))
    if not entries:
        return booking.start, (), live_busy
    rerouted = [i for i, e in enumerate(entries) if not e.get("kept_hosts")]
    moves = []
    for i, e in enumerate(entries):
        at = instant_of(e["at"])
        if end is not None and at >= end:
            break
        busy = set(e.get("live_busy") or ())
        if rerouted and i == rerouted[-1]:
            busy |= live_busy  # the record of the last re-route: its own live checks
        moves.append(Move(at, instant_of(e["to"]), bool(e.get("kept_hosts")), frozenset(busy)))
    first = entries[0]["from"]
    return instant_of(first["start"]), tuple(moves), frozenset() if rerouted else live_busy


def _hosts_now(bookings: list[Booking]) -> dict[int, list[int]]:
    """Booking pk → the reps of its host rows not reassigned away (a cancelled booking's: those it had)."""
    hosts: dict[int, list[int]] = {}
    rows = BookingHost.objects.filter(booking__in=among_subquery([b.pk for b in bookings])).exclude(
        released=BookingHost.Released.REASSIGNED
    )
    for booking_id, rep_id in rows.order_by("pk").values_list("booking_id", "rep_id"):
        hosts.setdefault(booking_id, []).append(rep_id)
    return hosts


def replay_leads(bookings: list[Booking], *, end: datetime | None = None) -> list[Lead]:
    """One lead per recorded booking: its decision time, requested start, meeting spec, the reps the
    providers reported busy live at that moment (from the decision record), the live hosts as they stood
    at ``end`` (its host rows now, rewound through the reassignments and re-routing reschedules of its
    history at or after ``end``: ``insights.history.hosts_at``), the route it was booked with, the account
    owner and fallback of the routing rules (as recorded for its lead), its cancellation instant if it was
    cancelled before ``end`` and the no-shows recorded (or corrected) before ``end``."""
    routes = {b.pk: _route_of(b) for b in bookings}
    decisions = _lead_decisions(bookings, routes)
    rows = _hosts_now(bookings)
    leads = []
    for b in bookings:
        record = b.decision or {}
        # without host rows (none written): the hosts its decision record names
        now = rows.get(b.pk) or [h["rep_id"] for h in record.get("hosts", ())]
        hosts_then = hosts_at(record.get("history") or (), now, end)
        first_start, moves, live_busy = _moves(b, record, end)
        rules = decisions.get(b.pk, {})
        owner = (rules.get("owner") or {}).get("rep_id")
        cancelled = b.status == Booking.Status.CANCELLED and b.cancelled_at is not None
        no_shows = no_show_changes(record.get("history") or ())
        leads.append(
            Lead(
                at=b.created_at,
                meeting=meeting_spec(b.meeting_type),
                start=first_start,
                live_busy=live_busy,
                recorded_hosts=hosts_then,
                route=routes[b.pk],
                owner=owner if isinstance(owner, int) else None,
                rules_fallback=bool((rules.get("fallback") or {}).get("used")),
                cancelled_at=b.cancelled_at if cancelled and (end is None or b.cancelled_at < end) else None,
                moves=moves,
                no_shows=tuple((at, counts) for at, counts in no_shows if end is None or at < end),
            )
        )
    return leads


def _prior_cancelled(
    pool: Pool, rep_ids: list[int], *, start: datetime, replayed: list[Booking]
) -> tuple[PriorBooking, ...]:
    """The members' host rows, in any pool, assigned before ``start`` whose booking was cancelled since: the
    calendars loaded now no longer hold them, but the rep was busy (and had that meeting on its local date,
    for daily caps) until the cancellation, the whole period for one cancelled at ``end`` or later (the
    simulator applies nothing recorded at or after ``Policy.end``). Their credit in this pool's fairness
    ledger is in ``rebuilt_bookings``'s moves."""
    rows = (
        BookingHost.objects.filter(
            rep_id__in=rep_ids,
            released=BookingHost.Released.CANCELLED,
            assigned_at__lt=start,
            booking__status=Booking.Status.CANCELLED,
            booking__cancelled_at__gte=start,
        )
        .exclude(booking__in=among_subquery([b.pk for b in replayed]))
        .order_by("booking__cancelled_at", "pk")
    )
    fields = ("rep_id", "blocked_start", "blocked_end", "booking__start", "booking__cancelled_at")
    return tuple(
        PriorBooking(rid, (b0, b1), booking_start, cancelled, own=pool_id == pool.pk, booking_id=booking_id)
        for rid, b0, b1, booking_start, cancelled, pool_id, booking_id in rows.values_list(
            *fields, "booking__pool", "booking_id"
        )
    )


def _as_synced(busy: dict[int, list[Interval]], *, start: datetime, end: datetime, window: Interval) -> tuple:
    """Turn the members' busy times loaded from today's rows into the calendars as synced at ``start``
    (``calendars.selectors.busy_timeline`` over the rows ``load_pool_state`` loads); returns the changes in
    ``[start, end)`` as ``Policy.busy_events``."""
    timeline = busy_timeline(
        list(busy), start=start, end=end, lo=window.start - MARGIN, hi=window.end + MARGIN
    )
    for rid, ivs in timeline.hidden_at_start.items():
        drop, kept = Counter(ivs), []
        for iv in busy[rid]:
            if drop[iv] > 0:
                drop[iv] -= 1
            else:
                kept.append(iv)
        busy[rid] = kept
    for rid, ivs in timeline.shown_at_start.items():
        busy[rid].extend(ivs)
    return tuple(timeline.events)


def current_policy(
    pool: Pool,
    *,
    start: datetime,
    end: datetime,
    replayed: list[Booking],
    label: str = "current",
    as_synced: bool = True,
    from_joined: bool = True,
) -> Policy:
    """The pool as configured now, its members from when they joined (``from_joined``), their calendars over
    ``[start, end + horizon)`` (the longest horizon of the pool's and the replayed bookings' meeting types, at
    least to the latest replayed start) without the bookings in ``replayed``, the fairness ledger as it
    stood at ``start`` with the recorded changes of bookings decided before it (``ledger_moves``), and the
    assignments without a booking made in ``[start, end)`` (replayed at their instant; a take-back at the
    instant the lead was routed by hand, as a ledger move: ``unbooked_charges``). ``as_synced``
    (replay): synced busy time as it was known at ``start``, its later changes in ``busy_events``; else
    today's rows throughout. ``from_joined`` (replay): each member takes part from its ``joined_at``
    (``members_since``); else (a synthetic stream: what would the pool as it is do) throughout."""
    # a routing rule may send another pool's meeting type here: the replayed bookings' types count too
    horizons = [*MeetingType.objects.filter(pool=pool).values_list("horizon_days", flat=True)]
    horizons += [b.meeting_type.horizon_days for b in replayed]
    latest = max([end + timedelta(days=max(horizons, default=30)), *(b.start for b in replayed)])
    window = Interval(start, latest + timedelta(days=1))
    state = load_pool_state(pool, None, now=start, window=window)
    members = {m.rep_id: m for m in state.spec.members}
    busy = {rid: list(m.rep.busy) for rid, m in members.items()}
    busy_events = _as_synced(busy, start=start, end=end, window=window) if as_synced and busy else ()
    per_date = {rid: dict(m.rep.meetings_per_local_date) for rid, m in members.items()}
    pool_per_date = {rid: dict(m.pool_meetings_per_local_date) for rid, m in members.items()}
    zones = {rid: ZoneInfo(m.rep.timezone) for rid, m in members.items()}
    replayed_hosts = BookingHost.objects.filter(
        booking__in=among_subquery([b.pk for b in replayed]), active=True, rep_id__in=list(members)
    ).values_list("rep_id", "blocked_start", "blocked_end", "booking__start")
    for rid, b0, b1, booking_start in replayed_hosts:
        iv = Interval(b0, b1)
        if iv in busy[rid]:
            busy[rid].remove(iv)
            day = booking_start.astimezone(zones[rid]).date()
            for counter in (per_date[rid], pool_per_date[rid]):
                counter[day] = counter.get(day, 1) - 1
    states = tuple(
        replace(
            m,
            rep=replace(m.rep, busy=tuple(busy[rid]), meetings_per_local_date=per_date[rid]),
            pool_meetings_per_local_date=pool_per_date[rid],
        )
        for rid, m in members.items()
    )
    rebuilt, moves = rebuilt_bookings(pool, list(members), start=start, end=end)
    before, instant, taken_back = unbooked_charges(pool, list(members), start=start, end=end)
    events, last, joined = ledger_before(pool, list(members), start, rebuilt=rebuilt, instant=before)
    counted, assigned = held_after(m for m in moves if m.at < start)  # the rebuilt bookings at ``start``
    for rid, instants in counted.items():
        events[rid] = sorted([*events.get(rid, ()), *instants])
    for rid, instants in assigned.items():  # and the rep's latest other one: a move may take theirs back
        assigned[rid] = sorted([*instants, *([last[rid]] if rid in last else [])])
        last[rid] = assigned[rid][-1]
    return Policy(
        label=label,
        strategy=pool.strategy,
        group_order=pool.group_order,
        fairness_period=pool.fairness_period,
        members=states,
        names={rid: m.rep.name for rid, m in members.items()},
        adjustments={rid: row.adjustment for rid, row in state.members.items()},
        joined=joined,
        ledger_events=events,
        last_assigned=last,
        count_cancellations=pool.count_cancellations,
        count_no_shows=pool.count_no_shows,
        prior_cancelled=_prior_cancelled(pool, list(members), start=start, replayed=replayed),
        ledger_moves=tuple(sorted([*(m for m in moves if m.at >= start), *taken_back], key=lambda m: m.at)),
        moved_assignments=assigned,
        members_since={rid: row.joined_at for rid, row in state.members.items()} if from_joined else {},
        instant=instant,
        busy_events=busy_events,
        end=end,
    )


def candidate_policy(
    base: Policy, pool: Pool, *, text: str, filename: str, label: str = "candidate"
) -> Policy:
    """``base`` with the pool settings and members of ``pool``'s entry in a config file (the format of
    ``routing.configfile``, checked by its own validator). Raises ``ConfigInvalid`` listing problems."""
    config = parse_config(load_document(text, filename=filename))
    specs = [p for p in config.pools if p.fields.get("slug") == pool.slug]
    if not specs:
        raise ConfigInvalid([f"pools: the file has no pool with slug {pool.slug!r}"])
    spec = specs[0]
    emails = dict(pool.members.values_list("rep__email", "rep_id"))
    by_rep = {m.rep_id: m for m in base.members}
    members, problems = [], []
    for m in spec.members:
        rid = emails.get(m.rep_email)
        if rid is None or rid not in by_rep:
            problems.append(
                f"{m.path}.rep: {m.rep_email} is not a member of pool {pool.slug} now; the simulator only "
                "has the calendars of current members"
            )
            continue
        f = m.fields
        members.append(
            replace(
                by_rep[rid],
                rank=f.get("rank", 0),
                weight=float(f.get("weight", 1.0)),
                role=f.get("role", ""),
                daily_cap=f.get("daily_cap"),
                active=f.get("active", True),
            )
        )
    if problems:
        raise ConfigInvalid(problems)
    kept = {m.rep_id for m in members}
    fields = spec.fields
    return replace(
        base,
        label=label,
        strategy=fields.get("strategy", base.strategy),
        group_order=fields.get("group_order", base.group_order),
        fairness_period=fields.get("fairness_period", base.fairness_period),
        members=tuple(members),
        names={rid: name for rid, name in base.names.items() if rid in kept},
    )
