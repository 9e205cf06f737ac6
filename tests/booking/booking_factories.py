"""Test data builders for the booking tests (reps with working hours, pools, meeting types, bodies)."""

from __future__ import annotations

import datetime as dt
import itertools

from booking.models import Booking, BookingHost, MeetingType
from calendars.models import WorkingHours
from routing.models import Pool, PoolMember, Rep

# Monday 2 March 2026, 07:00 UTC (08:00 in Berlin).
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
# Tuesday 3 March 2026, 09:00 UTC: a start inside the working hours of ``make_rep``'s reps.
START = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
_seq = itertools.count(1)


def make_rep(
    name: str | None = None, *, tz: str = "Europe/Berlin", hours=(9, 17), days=range(5), **kw
) -> Rep:
    n = next(_seq)
    rep = Rep.objects.create(name=name or f"Rep {n}", email=f"rep{n}@example.com", timezone=tz, **kw)
    WorkingHours.objects.bulk_create(
        [WorkingHours(rep=rep, weekday=d, start=dt.time(hours[0]), end=dt.time(hours[1])) for d in days]
    )
    return rep


def make_pool(strategy: str, reps, roles=None, **kw) -> Pool:
    n = next(_seq)
    pool = Pool.objects.create(name=f"Pool {n}", slug=f"pool-{n}", strategy=strategy, **kw)
    for i, rep in enumerate(reps):
        PoolMember.objects.create(pool=pool, rep=rep, rank=i, role=roles[i] if roles else "")
    return pool


def make_meeting_type(pool: Pool, slug: str | None = None, **kw) -> MeetingType:
    defaults = dict(
        title="Intro call",
        duration_minutes=30,
        slot_interval_minutes=30,
        minimum_notice_minutes=60,
        horizon_days=30,
        questions=[],
    )
    defaults.update(kw)
    return MeetingType.objects.create(pool=pool, slug=slug or f"intro-{next(_seq)}", **defaults)


def body(start: str = "2026-03-03T10:00:00+01:00", **kw) -> dict:
    data = {
        "start": start,
        "name": "Pat Prospect",
        "email": "pat@example.org",
        "timezone": "Europe/Berlin",
        "answers": {"size": "1-10"},
        "note": "",
        "utm": {"utm_source": "test"},
    }
    data.update(kw)
    return data


def bulk_bookings(meeting_type: MeetingType, reps: list, starts: list, *, assigned_at=None) -> list:
    """Confirmed 30-minute bookings of ``meeting_type`` at ``starts``, hosted by ``reps`` in turn (one
    statement each for bookings and host rows): a long history or a full calendar for plan tests. Host rows
    are assigned at ``assigned_at``, or at their booking's start."""
    n = next(_seq)
    rows = Booking.objects.bulk_create(
        Booking(
            meeting_type=meeting_type,
            pool=meeting_type.pool,
            start=start,
            end=start + dt.timedelta(minutes=30),
            status="confirmed",
            prospect_name="Bulk",
            prospect_email=f"b{i}@example.com",
            prospect_timezone="UTC",
            manage_token_hash=f"bulk-{n}-{i}",
            decision={},
        )
        for i, start in enumerate(starts)
    )
    BookingHost.objects.bulk_create(
        BookingHost(
            booking=b,
            rep=reps[i % len(reps)],
            blocked_start=b.start,
            blocked_end=b.end,
            active=True,
            assigned_at=assigned_at or b.start,
        )
        for i, b in enumerate(rows)
    )
    return rows


def create_keyed(meeting_type: MeetingType, key: str, email: str = "pat@example.org", start=START):
    """``booking_create`` for Pat in Berlin with an Idempotency-Key."""
    from booking.services import booking_create

    return booking_create(
        meeting_type=meeting_type,
        start=start,
        name="Pat",
        email=email,
        timezone="Europe/Berlin",
        idempotency_key=key,
    )
