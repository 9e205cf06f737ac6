"""Dashboard figures (read only): per pool and per rep for a period ``[start, end)`` (UTC).

Definitions (docs/insights.md has the full list):

* bookings of a period: the pool's bookings created in the period, any status; a rep's bookings are those it
  hosts (not reassigned away); a rep who left the pool keeps a row (``departed``, target 0) while it hosts
  bookings of the period. Share = rep bookings / all host assignments; target = weight / total weight
  of the active members; gap = share − target (share and gap: None when the period has no assignment).
* no-show rate, conversion (won) and revenue per meeting are over the bookings with a recorded outcome.
* lead time = booking start − booking creation, median in hours.
* speed to lead = booking creation − the booking's visitor's first view of the booking page of the booking's
  meeting type, looked for from the earlier of the period start and 30 days before the booking up to the
  booking's creation; median and p90 in minutes over the bookings with such a view.
* cap hits: decisions in which a candidate was skipped for ``cap``; fallbacks: decisions in which the chosen
  host was found busy live and the next one taken (``live_busy``) or that carry a truthy ``fallback`` key.
* availability-adjusted fairness: rep bookings ÷ (bookings + starts the routing core still finds free for
  the rep in the period, the pool's first meeting type, no notice, horizon over the period).
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q

from booking.models import Booking, BookingHost, BookingOutcome, MeetingType
from booking.selectors import bookings_needing_attention
from calendars.models import CalendarConnection, TimeOff
from calendars.selectors import withheld_rep_ids
from insights.metrics import percentile
from insights.models import PageVisit, RoutedLead
from routing.core import Interval, free_starts
from routing.models import Pool, PoolMember, Rep
from routing.selectors import load_pool_state, meeting_spec

GAP_HIGHLIGHT = 0.05
VISIT_LOOKBACK = timedelta(days=30)
VISITOR_CHUNK = 500


def _ratio(a, b):
    return (a / b) if b else None


def period_bookings(pool: Pool, start: datetime, end: datetime):
    return Booking.objects.filter(pool=pool, created_at__gte=start, created_at__lt=end)


def funnel(pool: Pool, start: datetime, end: datetime) -> dict:
    """Visits → qualified → booked of the pool's meeting types' pages: a booking a routing rule sent to
    another pool is booked here, where its prospect's visit and lead are (the other figures are the routed
    pool's, where the booking's host was chosen)."""
    visits = PageVisit.objects.filter(pool=pool, at__gte=start, at__lt=end)
    routed = RoutedLead.objects.filter(pool=pool, at__gte=start, at__lt=end)
    booked = Booking.objects.filter(
        meeting_type__pool=pool, created_at__gte=start, created_at__lt=end
    ).count()
    return {
        "visits": visits.count(),
        "visitors": visits.exclude(visitor="").values("visitor").distinct().count(),
        "qualified": routed.filter(qualified=True).count() if routed.exists() else None,
        "booked": booked,
    }


def speed_to_lead(bookings: list[Booking], start: datetime) -> dict[int, float]:
    """Booking pk → minutes from its visitor's first page view of its meeting type (from the earlier of
    ``start`` and 30 days before the booking, up to its creation) to its creation. Bookings without a visitor
    id or without such a view are left out."""
    tied = [b for b in bookings if b.visitor_id]
    if not tied:
        return {}
    earliest = min(min(start, b.created_at - VISIT_LOOKBACK) for b in tied)
    latest = max(b.created_at for b in tied)
    visitors = sorted({b.visitor_id for b in tied})
    seen: dict[tuple[str, int], list[datetime]] = defaultdict(list)
    for i in range(0, len(visitors), VISITOR_CHUNK):  # bounded IN lists (SQLite's variable limit)
        visits = PageVisit.objects.filter(
            visitor__in=visitors[i : i + VISITOR_CHUNK],
            meeting_type_id__in={b.meeting_type_id for b in tied},
            at__gte=earliest,
            at__lte=latest,
        )
        for visitor, meeting_type_id, when in visits.values_list("visitor", "meeting_type_id", "at"):
            seen[(visitor, meeting_type_id)].append(when)
    for times in seen.values():
        times.sort()
    out = {}
    for b in tied:
        times = seen.get((b.visitor_id, b.meeting_type_id), [])
        i = bisect.bisect_left(times, min(start, b.created_at - VISIT_LOOKBACK))
        if i < len(times) and times[i] <= b.created_at:
            out[b.pk] = (b.created_at - times[i]).total_seconds() / 60
    return out


def _decision_flags(decision: dict) -> tuple[set[int], bool]:
    capped = {c["rep_id"] for c in decision.get("candidates", ()) if c.get("reason") == "cap"}
    fallback = bool(decision.get("live_busy")) or bool(decision.get("fallback"))
    return capped, fallback


def rep_rows(pool: Pool, start: datetime, end: datetime) -> dict:
    """Per-rep table plus pool totals for the period."""
    bookings = list(period_bookings(pool, start, end).select_related("outcome"))
    by_id = {b.pk: b for b in bookings}
    # the same period condition as a join, not the list of ids: one bind parameter per booking outgrew
    # PostgreSQL's 65,535 (server-side binding) on a busy pool over a long period
    hosts = BookingHost.objects.filter(
        booking__pool=pool, booking__created_at__gte=start, booking__created_at__lt=end
    ).exclude(released=BookingHost.Released.REASSIGNED)
    members = list(PoolMember.objects.filter(pool=pool).select_related("rep"))
    now_roles = {m.rep_id: m.role for m in members}
    per_rep: dict[int, list[Booking]] = defaultdict(list)
    seats: Counter = Counter()  # host rows per role
    seated: Counter = Counter()  # host rows per (rep, role)
    names: dict[int, str] = {}
    for rep_id, booking_id, role, name in hosts.values_list("rep_id", "booking_id", "role", "rep__name"):
        if booking_id not in by_id:  # created between the two reads
            continue
        per_rep[rep_id].append(by_id[booking_id])
        names[rep_id] = name
        if role not in now_roles.values():  # a role renamed since: the seat is its holder's role now
            role = now_roles.get(rep_id, role)
        seats[role] += 1
        seated[(rep_id, role)] += 1
    # a group pool's meetings take one member of every role: shares and targets are within the member's
    # role (over the whole pool a fair 4/4/4 AEs and 12 for the one SE read as far off target)
    group = pool.strategy == "group"

    def role_of(role: str) -> str:
        return role if group else ""

    weights = {m.rep_id: m.weight for m in members if m.active and m.rep.active}
    total_weight: Counter = Counter()
    for m in members:
        total_weight[role_of(m.role)] += weights.get(m.rep_id, 0.0)
    assignments = seats if group else {"": sum(seats.values())}
    cap_hits: Counter = Counter()
    pool_caps = pool_fallbacks = 0
    for b in bookings:
        capped, fallback = _decision_flags(b.decision or {})
        cap_hits.update(capped)
        pool_caps += bool(capped)
        pool_fallbacks += fallback
    fallbacks_by_rep: Counter = Counter()
    for rep_id, items in per_rep.items():
        fallbacks_by_rep[rep_id] = sum(_decision_flags(b.decision or {})[1] for b in items)
    offered = offered_free(pool, start, end)
    speeds = speed_to_lead(bookings, start)
    # (rep, name, role, departed): the members, then each rep who left the pool but hosts bookings of the
    # period (target 0): they are in every share's denominator, and the rows add up to the pool's bookings
    by_name = sorted(members, key=lambda m: (m.rep.name, m.rep_id))
    listed = [(m.rep_id, m.rep.name, m.role, False) for m in by_name]
    gone = sorted((names[rid], rid) for rid in per_rep if rid not in now_roles)
    listed += [(rid, name, _held_role(seated, rid), True) for name, rid in gone]
    rows = []
    for rep_id, name, role, departed in listed:
        items = per_rep.get(rep_id, [])
        n = len(items)
        # a group pool: the seats of the member's role (one held in another role, before a change of
        # roles, is no share of this one's)
        held = seated[(rep_id, role)] if group else n
        share = _ratio(held, assignments.get(role_of(role), 0))  # None: nothing assigned, no share to compare
        role_weight = total_weight[role_of(role)]
        target = (weights.get(rep_id, 0.0) / role_weight) if role_weight else 0.0
        row = {"rep_id": rep_id, "name": name, "bookings": n, "share": share, "target_share": target}
        row["departed"] = departed  # no longer a member of the pool
        row["gap"] = None if share is None else share - target
        # one who left has no target to meet any more: its gap is shown, not flagged
        row["highlight"] = not departed and row["gap"] is not None and abs(row["gap"]) > GAP_HIGHLIGHT
        row.update(outcome_figures(items, speeds))
        row["cap_hits"] = cap_hits.get(rep_id, 0)
        row["fallbacks"] = fallbacks_by_rep.get(rep_id, 0)
        free = offered.get(rep_id)
        row["free_slots"] = free
        row["adjusted_fairness"] = None if free is None else _ratio(n, n + free)
        rows.append(row)
    totals = {"bookings": len(bookings), "cap_hits": pool_caps, "fallbacks": pool_fallbacks}
    totals.update(outcome_figures(bookings, speeds))
    return {"rows": rows, "totals": totals}


def _held_role(seated: Counter, rep_id: int) -> str:
    """The role in which a rep who left the pool held most of its seats in the period (a group pool's share
    is within a role)."""
    held = [(n, role) for (rid, role), n in seated.items() if rid == rep_id]
    return max(held, key=lambda item: (item[0], item[1]))[1] if held else ""


def outcome_figures(bookings: list[Booking], speeds: dict[int, float] | None = None) -> dict:
    """Outcome rates, revenue, lead time and speed to lead (``speeds``: from ``speed_to_lead``)."""
    outcomes = []
    for b in bookings:
        try:
            outcomes.append(b.outcome)
        except BookingOutcome.DoesNotExist:
            continue
    recorded = len(outcomes)
    kinds = Counter(o.kind for o in outcomes)
    revenue = sum((o.amount for o in outcomes if o.kind == "won" and o.amount is not None), Decimal(0))
    lead_hours = [(b.start - b.created_at).total_seconds() / 3600 for b in bookings]
    speed = [speeds[b.pk] for b in bookings if b.pk in (speeds or {})]
    return {
        "outcomes": recorded,
        "no_show_rate": _ratio(kinds["no_show"], recorded),
        "conversion": _ratio(kinds["won"], recorded),
        "revenue": revenue,
        "revenue_per_meeting": (revenue / recorded) if recorded else None,
        "lead_time_hours": statistics.median(lead_hours) if lead_hours else None,
        "speed_to_lead_minutes": statistics.median(speed) if speed else None,
        "speed_to_lead_p90_minutes": percentile(speed, 90),
        "speed_to_lead_bookings": len(speed),
    }


def offered_free(pool: Pool, start: datetime, end: datetime) -> dict[int, int]:
    """Per rep: start instants in ``[start, end)`` at which the routing core finds the rep free for the pool's
    first active meeting type (calendars as synced now, bookings blocking). Empty without a meeting type."""
    meeting_type = MeetingType.objects.filter(pool=pool, active=True).order_by("pk").first()
    if meeting_type is None:
        return {}
    window = Interval(start, end)
    state = load_pool_state(pool, meeting_type, now=start, window=window)
    days = max(1, (end - start).days + 1)
    spec = replace(meeting_spec(meeting_type), minimum_notice_minutes=0, horizon_days=days)
    return {m.rep_id: len(free_starts(m, spec, now=start, window=window)) for m in state.spec.members}


def daily_bookings(pool: Pool, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Bookings created per UTC day of the period, every day from ``start``'s to the one ``end`` falls in (not
    that one when ``end`` is its midnight). The days walked and the days counted are both UTC dates, whatever
    zone ``start`` and ``end`` carry."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    created = period_bookings(pool, start, end).values_list("created_at", flat=True)
    counts = Counter(at.astimezone(UTC).date() for at in created)
    out, day = [], start.date()
    while day < end.date() or (day == end.date() and end.time() != datetime.min.time()):
        out.append((day.isoformat(), counts.get(day, 0)))
        day += timedelta(days=1)
    return out


def today_board(*, now: datetime) -> dict:
    """Upcoming confirmed meetings per rep until the end of today (UTC), reps unavailable right now, and how
    many upcoming bookings need attention (``booking.selectors.bookings_needing_attention``)."""
    day_end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    upcoming = (
        BookingHost.objects.filter(
            active=True, booking__status="confirmed", booking__start__gte=now, booking__start__lt=day_end
        )
        .select_related("rep", "booking__meeting_type")
        .order_by("rep__name", "booking__start")
    )
    meetings = [
        {"rep": h.rep.name, "start": h.booking.start, "meeting_type": h.booking.meeting_type.title,
         "prospect": h.booking.prospect_name}
        for h in upcoming
    ]  # fmt: skip
    unavailable: dict[int, dict] = {}
    for off in TimeOff.objects.filter(start__lte=now, end__gt=now).select_related("rep"):
        unavailable.setdefault(off.rep_id, {"rep": off.rep.name, "reasons": []})["reasons"].append(
            f"time off until {off.end:%Y-%m-%d %H:%M} UTC"
        )
    broken = CalendarConnection.objects.filter(
        Q(status=CalendarConnection.Status.ERROR) | Q(status=CalendarConnection.Status.DISCONNECTED)
    ).select_related("rep")
    for conn in broken:
        unavailable.setdefault(conn.rep_id, {"rep": conn.rep.name, "reasons": []})["reasons"].append(
            f"calendar {conn.get_status_display().lower()}"
        )
    active_ids = list(PoolMember.objects.filter(active=True).values_list("rep_id", flat=True).distinct())
    withheld = withheld_rep_ids(active_ids, now=now) - set(unavailable)
    for rep_id, name in Rep.objects.filter(pk__in=withheld).values_list("pk", "name"):  # one query for all
        unavailable[rep_id] = {"rep": name, "reasons": ["withheld: calendar not synced recently"]}
    attention = bookings_needing_attention(Booking.objects.all(), now=now).count()  # any day, not just today
    return {
        "meetings": meetings,
        "unavailable": sorted(unavailable.values(), key=lambda r: r["rep"]),
        "attention": attention,
    }


def pools_with_counts():
    return Pool.objects.annotate(n=Count("members")).order_by("name")
