"""Read side of booking: meeting types, offered slots, bookings by manage token."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Q

from booking.errors import (
    BookingAlreadyCancelled,
    BookingInPast,
    BookingNotActive,
    BookingNotFound,
    MeetingTypeNotFound,
)
from booking.models import Booking, BookingHost, ManageLink, MeetingType
from routing import sqlrows
from routing.core import Interval, RepSchedule, free_starts, offered_slots
from routing.core.availability import within_working_hours
from routing.models import PoolMember
from routing.selectors import load_pool_state, meeting_spec

MAX_SLOT_DAYS = 62
DEFAULT_SLOT_DAYS = 7
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a manage token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def meeting_types_active():
    return MeetingType.objects.filter(active=True).order_by("title", "pk")


def meeting_type_get(slug: str) -> MeetingType:
    """The active meeting type ``slug`` (pool selected) or ``MeetingTypeNotFound``."""
    found = sqlrows.instances(MeetingType, "t.slug = %s AND t.active", [slug], related="pool")
    if not found:  # slugs are unique
        raise MeetingTypeNotFound()
    return found[0]


def booking_changeable(booking: Booking, *, now: datetime) -> None:
    """Raise what refuses a change (cancel, reschedule, reassignment) of ``booking``: cancelled, no longer
    confirmed, or started."""
    if booking.status == Booking.Status.CANCELLED:
        raise BookingAlreadyCancelled()
    if booking.status != Booking.Status.CONFIRMED:
        raise BookingNotActive()
    if booking.start <= now:
        raise BookingInPast()


def booking_by_token(token: str, *, for_update: bool = False) -> Booking:
    """The booking whose manage token is ``token``; any failure is ``BookingNotFound`` (a plain 404)."""
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise BookingNotFound()
    qs = Booking.objects.select_related("meeting_type", "pool")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    digest = token_hash(token)
    booking = qs.filter(manage_token_hash=digest).first()
    if booking is None:  # a link a later e-mail carried (``ManageLink``): looked up only for the rest
        booking = qs.filter(pk__in=ManageLink.objects.filter(token_hash=digest).values("booking_id")).first()
    if booking is None:
        raise BookingNotFound()
    return booking


def local_day_window(start: date, end: date, zone: ZoneInfo) -> Interval:
    """UTC interval from local midnight of ``start`` to local midnight after ``end`` in ``zone``."""
    lo = datetime(start.year, start.month, start.day, tzinfo=zone)
    after = end + timedelta(days=1)
    hi = datetime(after.year, after.month, after.day, tzinfo=zone)
    return Interval(lo, hi)


def slots_in_window(
    meeting_type: MeetingType, window: Interval, *, now: datetime, route=None
) -> list[datetime]:
    """Offered starts (UTC, sorted) of ``meeting_type`` in ``window`` (start inclusive, end exclusive).

    Round-robin pools decide the offering rep over the whole horizon, so their schedules are loaded for it.
    A ``route`` (``leads.tokens.Route``) replaces the meeting type's pool and restricts its candidates.
    """
    pool = route.pool if route else meeting_type.pool
    load_window = _load_window(pool, meeting_type, window, now=now)
    if load_window is None:
        return []
    spec = load_pool_state(pool, meeting_type, now=now, window=load_window).spec
    spec = route.restrict(spec) if route else spec
    return offered_slots(spec, meeting_spec(meeting_type), now=now, window=window)


def _load_window(pool, meeting_type: MeetingType, window: Interval, *, now: datetime) -> Interval | None:
    """What a question for the starts in ``window`` loads: nothing outside [now, now + horizon) is offered, so
    None (nothing to load, no start) when ``window`` lies outside it, else its part inside it, or for a
    round-robin pool the whole of [now, now + horizon) (the offering rep is decided over it). A window in
    the past read the reps' bookings and busy rows from its start up to now, their whole history for an
    anonymous GET."""
    horizon_end = now + timedelta(days=meeting_type.horizon_days)
    lo, hi = max(window.start, now), min(window.end, horizon_end)
    if lo >= hi:
        return None
    return Interval(now, horizon_end) if pool.strategy == "round_robin" else Interval(lo, hi)


def as_routed(spec, booking: Booking):
    """``spec`` (a core PoolSpec of the booking's pool) restricted as the booking's route was (its decision's
    ``route``: the candidates, factors and ranks of ``leads.tokens.Route``), for routing the booking again;
    ``spec`` itself for a booking made without a route."""
    record = (booking.decision or {}).get("route")
    if not record:
        return spec
    from leads.tokens import Route

    return Route.from_record(booking.pool, record).restrict(spec)


def reschedule_slots(booking: Booking, window: Interval, *, now: datetime) -> list[datetime]:
    """The starts (UTC, sorted) in ``window`` that ``booking`` can move to, with the booking's own time not
    counting as busy: where all its current hosts are free (a reschedule keeps them), and where its pool
    offers a time, as its route restricts it (a reschedule routes it again). Its own start is not a move."""
    meeting_type, pool = booking.meeting_type, booking.pool
    load_window = _load_window(pool, meeting_type, window, now=now)
    if load_window is None:
        return []
    state = load_pool_state(pool, meeting_type, now=now, window=load_window, exclude_booking_id=booking.pk)
    spec = meeting_spec(meeting_type)
    starts = set(offered_slots(as_routed(state.spec, booking), spec, now=now, window=window))
    members = {m.rep_id: m for m in state.spec.members}  # a host kept need not be a candidate of the route
    hosts = [h.rep_id for h in booking.hosts.all() if h.active]
    if hosts and all(rep_id in members for rep_id in hosts):
        free = [set(free_starts(members[rep_id], spec, now=now, window=window)) for rep_id in hosts]
        starts |= set.intersection(*free)
    starts.discard(booking.start)
    return sorted(starts)


def slots_for_days(
    meeting_type: MeetingType, *, start: date, end: date, zone: ZoneInfo, now: datetime, route=None
) -> list[datetime]:
    """Offered starts on local dates ``start`` … ``end`` (inclusive) in ``zone``, converted to ``zone``."""
    window = local_day_window(start, end, zone)
    return [s.astimezone(zone) for s in slots_in_window(meeting_type, window, now=now, route=route)]


def alternatives(
    meeting_type: MeetingType, *, after: datetime, zone: ZoneInfo, now: datetime, limit: int = 5, route=None
) -> list[str]:
    """The next ``limit`` offered starts after ``after`` (within 14 days), ISO 8601 in ``zone``."""
    return _next_starts(
        lambda window: slots_in_window(meeting_type, window, now=now, route=route),
        after=after,
        zone=zone,
        now=now,
        limit=limit,
    )


def reschedule_alternatives(
    booking: Booking, *, after: datetime, zone: ZoneInfo, now: datetime, limit: int = 5
) -> list[str]:
    """The next ``limit`` starts after ``after`` (within 14 days) the booking can move to
    (``reschedule_slots``), ISO 8601 in ``zone``: what a reschedule's 409 offers instead."""
    return _next_starts(
        lambda window: reschedule_slots(booking, window, now=now),
        after=after,
        zone=zone,
        now=now,
        limit=limit,
    )


def _next_starts(starts_in, *, after: datetime, zone: ZoneInfo, now: datetime, limit: int) -> list[str]:
    lo = max(after, now)
    starts = [s for s in starts_in(Interval(lo, lo + timedelta(days=14))) if s != after]
    return [s.astimezone(zone).isoformat() for s in starts[:limit]]


def booking_for_outcome(booking_id: int, user) -> Booking:
    """The booking ``booking_id`` if ``user`` may record its outcome: a user who may change bookings (as the
    admin's outcome actions ask), or the Django user linked to one of its (active) host reps; staff status
    alone is not enough. Anything else, including a missing booking, is ``BookingNotFound``."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise BookingNotFound()
    qs = Booking.objects.select_related("pool", "meeting_type").filter(pk=booking_id)
    if not user.has_perm("booking.change_booking"):
        qs = qs.filter(hosts__active=True, hosts__rep__user=user)
    booking = qs.first()
    if booking is None:
        raise BookingNotFound()
    return booking


# Why an upcoming booking may need an admin (a reassignment, or a word with its host): the host changed
# after the booking was made. Checked against the meeting's own time, not its buffers.
ATTENTION = {
    "inactive": "Host deactivated",
    "not_member": "Host no longer an active member of the booking's pool",
    "time_off": "Host on time off",
    "busy": "Host busy in their calendar",
    "removed": "Host removed it from their calendar",
    "off_hours": "Host off work then (hours or a day off)",
}


def bookings_needing_attention(bookings, reason: str = "", *, now: datetime, rep_id: int | None = None):
    """The confirmed, not yet ended ``bookings`` with an active host who is deactivated, is no longer an
    active member of the booking's pool (removed from it, or the membership deactivated), has time off during
    the meeting, has other busy time then (a synced calendar event, or busy time entered in Baton), deleted
    the event Baton wrote into their calendar (found by an incremental sync), or is off work then (their
    weekly hours or that date's override no longer cover the meeting);
    ``reason`` (a key of ``ATTENTION``) narrows it to one of these, empty means any; ``rep_id`` to that
    host."""
    from calendars.models import BookingEvent, BusyInterval, TimeOff  # calendars imports booking

    # the host row's rep, overlapping the host row's booking
    during = {
        "rep_id": OuterRef("rep_id"),
        "start__lt": OuterRef("booking__end"),
        "end__gt": OuterRef("booking__start"),
    }
    checks = {
        "inactive": Q(rep__active=False),
        # the host row's copy of the booking's pool (``booking_pool_id``): no join to the booking
        "not_member": ~Exists(
            PoolMember.objects.filter(
                pool_id=OuterRef("booking_pool_id"), rep_id=OuterRef("rep_id"), active=True
            )
        ),
        "time_off": Exists(TimeOff.objects.filter(**during)),
        "busy": Exists(BusyInterval.objects.filter(**during)),
        "removed": Exists(
            BookingEvent.objects.filter(
                booking_id=OuterRef("booking_id"),
                rep_id=OuterRef("rep_id"),
                state=BookingEvent.State.ACTIVE,
                host_removed_at__isnull=False,
            )
        ),
    }
    if reason in ("", "off_hours"):  # the working-hours rules are the routing core's, not one query
        checks["off_hours"] = Q(
            booking_id__in=sqlrows.among_subquery(off_hours_booking_ids(now=now, rep_id=rep_id))
        )
    wanted = [checks[reason]] if reason else list(checks.values())
    condition = wanted[0]
    for more in wanted[1:]:
        condition |= more
    # the host rows of upcoming confirmed bookings only (their own copies of the booking's status, and the
    # end of their blocked time): else PostgreSQL could join every active host row of the history to the
    # checks first (6 s for a count at 100,000 bookings over two years; the dashboard and the booking list
    # filter run it)
    hosts = BookingHost.objects.filter(
        condition,
        booking=OuterRef("pk"),
        active=True,
        booking_status=Booking.Status.CONFIRMED,
        blocked_end__gt=now,
    )
    if rep_id is not None:
        hosts = hosts.filter(rep_id=rep_id)
    return bookings.filter(Exists(hosts), status=Booking.Status.CONFIRMED, end__gt=now)


def off_hours_booking_ids(*, now: datetime, rep_id: int | None = None) -> set[int]:
    """Confirmed, not yet ended bookings with an active host (``rep_id``, or any) whose working hours
    (weekly, or that local date's override: a day off, other hours) no longer cover the meeting, by the
    routing core's rules."""
    from calendars.models import DateOverride, WorkingHours

    hosts = BookingHost.objects.filter(
        active=True, booking__status=Booking.Status.CONFIRMED, booking__end__gt=now
    )
    if rep_id is not None:
        hosts = hosts.filter(rep_id=rep_id)
    rows = list(hosts.values_list("booking_id", "rep_id", "rep__timezone", "booking__start", "booking__end"))
    zones = {row[1]: row[2] for row in rows}
    reps = set(zones)
    weekly: dict = defaultdict(lambda: defaultdict(list))
    for rep, weekday, start, end in WorkingHours.objects.filter(rep_id__in=reps).values_list(
        "rep_id", "weekday", "start", "end"
    ):
        weekly[rep][weekday].append((start, end))
    dated: dict = defaultdict(lambda: defaultdict(list))
    since = (now - timedelta(days=2)).date()  # a local date can be a day behind UTC
    for rep, day, start, end in DateOverride.objects.filter(rep_id__in=reps, date__gte=since).values_list(
        "rep_id", "date", "start", "end"
    ):
        ranges = dated[rep][day]  # a day off stays an empty list
        if start is not None:
            ranges.append((start, end))
    schedules = {
        rep: RepSchedule(
            rep_id=rep,
            timezone=zone,
            weekly_hours={d: tuple(sorted(r)) for d, r in weekly[rep].items()},
            date_overrides={d: tuple(sorted(r)) for d, r in dated[rep].items()},
        )
        for rep, zone in zones.items()
    }
    return {b for b, rep, _, start, end in rows if not within_working_hours(schedules[rep], start, end)}
